"""`lti-tool platform rest-token`: the LMS REST token comes from a 0600 file or the environment."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from lti_tool.cli import main
from lti_tool.secrets import SecretKeyMismatch, unseal
from lti_tool.store.models.core import Platform
from tests.conftest import institution_for_new_platform


def _platform(db) -> int:
    platform = Platform(institution_id=institution_for_new_platform(db).id, status="active",
                        issuer="https://moodle.example.edu", client_id="abc",
                        auth_login_url="https://moodle.example.edu/mod/lti/auth.php",
                        auth_token_url="https://moodle.example.edu/mod/lti/token.php",
                        key_set_url="https://moodle.example.edu/mod/lti/certs.php",
                        lms_kind="moodle")
    db.add(platform)
    db.commit()
    return platform.id


def _run(runtime, *args, env=None):
    return CliRunner().invoke(main, list(args), obj={"runtime": runtime}, env=env)


def test_token_from_owner_only_file_is_stored(runtime, db, tmp_path) -> None:
    platform_id = _platform(db)
    token = tmp_path / "token"
    token.write_text("ws-token-123\n")
    token.chmod(0o600)
    result = _run(runtime, "platform", "rest-token", str(platform_id), "--file", str(token))
    assert result.exit_code == 0, result.output
    db.expire_all()
    stored = db.get(Platform, platform_id).rest_token
    assert "ws-token-123" not in stored and stored.startswith("fernet:v1:")  # sealed at rest
    assert unseal(runtime.settings, stored) == "ws-token-123"
    key_file = Path(runtime.settings.data_dir) / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    other_key = dataclasses.replace(runtime.settings, encryption_key=Fernet.generate_key().decode())
    with pytest.raises(SecretKeyMismatch, match="LTI_TOOL_ENCRYPTION_KEY"):
        unseal(other_key, stored)


def test_world_readable_token_file_is_refused(runtime, db, tmp_path) -> None:
    platform_id = _platform(db)
    token = tmp_path / "token"
    token.write_text("ws-token-123")
    token.chmod(0o644)
    result = _run(runtime, "platform", "rest-token", str(platform_id), "--file", str(token))
    assert result.exit_code != 0
    db.expire_all()
    assert db.get(Platform, platform_id).rest_token is None


def test_token_from_environment_and_clear(runtime, db) -> None:
    platform_id = _platform(db)
    result = _run(runtime, "platform", "rest-token", str(platform_id), "--env", "MY_TOKEN",
                  env={"MY_TOKEN": "canvas-456"})
    assert result.exit_code == 0, result.output
    db.expire_all()
    assert unseal(runtime.settings, db.get(Platform, platform_id).rest_token) == "canvas-456"
    result = _run(runtime, "platform", "rest-token", str(platform_id), "--clear")
    assert result.exit_code == 0
    db.expire_all()
    assert db.get(Platform, platform_id).rest_token is None


def test_unknown_platform_and_missing_source_fail_clearly(runtime, db) -> None:
    result = _run(runtime, "platform", "rest-token", "999", "--env", "HOME")
    assert result.exit_code == 1 and "No platform with id 999" in result.output
    result = _run(runtime, "platform", "rest-token", "1")
    assert result.exit_code == 1 and "exactly one of" in result.output


def test_a_malformed_encryption_key_is_a_clear_error(runtime) -> None:
    from lti_tool.secrets import seal

    broken = dataclasses.replace(runtime.settings, encryption_key="not-a-key")
    with pytest.raises(SecretKeyMismatch, match="not a Fernet key"):
        seal(broken, "secret")
