"""`lti-tool platform …` and `lti-tool keys rotate` against a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jwcrypto import jwk
from sqlalchemy import select

from lti_tool.cli import main
from lti_tool.store import keys
from lti_tool.store.models.core import Context, Platform, RegistrationInvite

CONFIG = Path(__file__).resolve().parents[2] / "config" / "platforms"
MOODLE = ["--issuer", "https://moodle.example.edu", "--client-id", "abc123",
          "--auth-login-url", "https://moodle.example.edu/mod/lti/auth.php",
          "--auth-token-url", "https://moodle.example.edu/mod/lti/token.php",
          "--key-set-url", "https://moodle.example.edu/mod/lti/certs.php",
          "--lms-kind", "moodle", "--name", "Moodle"]


@pytest.fixture
def cli(runtime):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), obj={"runtime": runtime})

    return run


def test_add_with_options_and_repeated_deployments(cli, db) -> None:
    result = cli("platform", "add", *MOODLE, "--deployment", "1", "--deployment", "2",
                 "--auto-accept-deployments")
    assert result.exit_code == 0, result.output
    platform = db.scalar(select(Platform))
    assert (platform.issuer, platform.client_id, platform.lms_kind) == (
        "https://moodle.example.edu", "abc123", "moodle")
    assert sorted(d.deployment_id for d in platform.deployments) == ["1", "2"]
    assert platform.auto_accept_deployments is True


@pytest.mark.parametrize(("change", "needle"), [
    (["--auth-login-url", "http://moodle.example.edu/mod/lti/auth.php"], "HTTPS"),
    (["--issuer", "moodle.example.edu"], "issuer must be an absolute"),
    (["--client-id", ""], "client_id is required"),
])
def test_add_refuses_invalid_fields_on_stderr(cli, db, change, needle) -> None:
    args = list(MOODLE)
    index = args.index(change[0])
    args[index + 1] = change[1]
    result = cli("platform", "add", *args)
    assert result.exit_code == 1
    assert needle in result.stderr
    assert db.scalar(select(Platform)) is None


def test_the_example_files_load_and_duplicates_are_refused(cli, db) -> None:
    for path in sorted(CONFIG.glob("*.toml")):
        result = cli("platform", "add", "--from-file", str(path))
        assert result.exit_code == 0, result.output + result.stderr
    platforms = {p.lms_kind + " " + p.issuer: p for p in db.scalars(select(Platform))}
    cloud = platforms["canvas https://canvas.instructure.com"]
    assert cloud.auth_login_url == "https://sso.canvaslms.com/api/lti/authorize_redirect"
    assert cloud.auth_token_url == "https://sso.canvaslms.com/login/oauth2/token"
    assert cloud.key_set_url == "https://sso.canvaslms.com/api/lti/security/jwks"
    moodle = platforms["moodle https://moodle.example.edu"]
    assert moodle.auth_login_url.endswith("/mod/lti/auth.php")
    assert moodle.key_set_url.endswith("/mod/lti/certs.php")
    assert len(platforms) == 3

    again = cli("platform", "add", "--from-file", str(CONFIG / "moodle.toml"))
    assert again.exit_code == 1 and "already registered" in again.stderr
    updated = cli("platform", "add", "--from-file", str(CONFIG / "moodle.toml"), "--update")
    assert updated.exit_code == 0 and "Updated platform" in updated.output


def test_from_file_errors(cli, db, tmp_path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("issuer = ")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"issuer": "https://x.example", "colour": "red"}))
    for path, needle in ((bad_toml, "not valid TOML"), (unknown, "unknown field(s) colour"),
                         (tmp_path / "missing.toml", "Cannot read")):
        result = cli("platform", "add", "--from-file", str(path))
        assert result.exit_code == 1
        assert needle in result.stderr
    assert db.scalar(select(Platform)) is None


def test_list_table_and_json(cli) -> None:
    assert "No platforms registered" in cli("platform", "list").output
    cli("platform", "add", *MOODLE, "--deployment", "1")
    table = cli("platform", "list").output.splitlines()
    assert table[0].split()[:6] == ["ID", "STATUS", "INSTITUTION", "KIND", "ISSUER",
                                    "CLIENT_ID"]
    assert table[1].split()[1:3] == ["active", "test-university"]
    assert "https://moodle.example.edu" in table[1] and "abc123" in table[1]
    (row,) = json.loads(cli("platform", "list", "--json").output)
    assert row["client_id"] == "abc123"
    assert (row["status"], row["institution"]) == ("active", "test-university")
    assert row["deployments"] == [{"deployment_id": "1", "enabled": True,
                                   "auto_accepted": False}]
    assert "rest_token" not in row


def test_remove_by_id_or_by_key_and_refusal_with_data(cli, db) -> None:
    cli("platform", "add", *MOODLE)
    platform_id = db.scalar(select(Platform.id))
    db.add(Context(platform_id=platform_id, context_id="2", title="LTI101"))
    db.commit()

    refused = cli("platform", "remove", str(platform_id))
    assert refused.exit_code == 1
    assert "holds 0 people and 1 courses" in refused.stderr and "--yes" in refused.stderr
    assert db.get(Platform, platform_id) is not None

    neither = cli("platform", "remove")
    assert neither.exit_code == 1 and "either by ID" in neither.stderr
    unknown = cli("platform", "remove", "--issuer", "https://nope.example", "--client-id", "x")
    assert unknown.exit_code == 1 and "No platform registration" in unknown.stderr

    done = cli("platform", "remove", "--issuer", "https://moodle.example.edu",
               "--client-id", "abc123", "--yes")
    assert done.exit_code == 0, done.stderr
    db.expire_all()
    assert db.scalar(select(Platform)) is None
    assert db.scalar(select(Context)) is None


def test_invite_prints_a_one_time_url_and_stores_only_a_hash(cli, db) -> None:
    result = cli("platform", "invite", "--note", "Moodle of Faculty X")
    assert result.exit_code == 0
    url = result.output.strip()
    assert url.startswith("http://127.0.0.1:8000/lti/register?invite=")
    token = url.split("invite=")[1]
    row = db.scalar(select(RegistrationInvite))
    assert row.note == "Moodle of Faculty X"
    assert token not in row.token_hash and row.used_at is None


def test_keys_rotate_keeps_the_old_key_published(cli, db, runtime) -> None:
    first = keys.active_key(db, runtime.settings, "lti").kid
    db.commit()
    result = cli("keys", "rotate")
    assert result.exit_code == 0, result.stderr
    assert first in result.output and "2 day(s)" in result.output
    db.expire_all()
    published = [k["kid"] for k in keys.public_jwks(db, runtime.settings)["keys"]]
    new = keys.active_key(db, runtime.settings, "lti").kid
    assert new != first and new in result.output
    assert published == [first, new]


def test_canvas_developer_key_json(cli) -> None:
    result = cli("platform", "canvas-key")
    assert result.exit_code == 0
    config = json.loads(result.output)
    assert config["oidc_initiation_url"] == "http://127.0.0.1:8000/lti/login"
    assert config["target_link_uri"] == "http://127.0.0.1:8000/lti/launch"
    assert config["public_jwk_url"] == "http://127.0.0.1:8000/lti/jwks"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in config["scopes"]
    assert ("https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
            in config["scopes"])
    (extension,) = config["extensions"]
    assert extension["privacy_level"] == "public"
    placements = {p["placement"]: p["message_type"]
                  for p in extension["settings"]["placements"]}
    assert placements == {"course_navigation": "LtiResourceLinkRequest",
                          "link_selection": "LtiDeepLinkingRequest",
                          "assignment_selection": "LtiDeepLinkingRequest"}
    assert config["custom_fields"]["canvas_course_id"] == "$Canvas.course.id"


def test_published_key_is_a_usable_rsa_jwk(db, runtime) -> None:
    (published,) = keys.public_jwks(db, runtime.settings)["keys"]
    assert published["alg"] == "RS256" and published["use"] == "sig"
    assert jwk.JWK(**published).export_public(as_dict=True)["kty"] == "RSA"
