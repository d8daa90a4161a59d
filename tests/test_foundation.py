"""The skeleton itself: settings layering, health, secrets on disk, migrations."""

from __future__ import annotations

import dataclasses
import stat

import pytest
from sqlalchemy import inspect

from lti_tool.secrets import InsecureSecretFile, read_or_create_secret
from lti_tool.settings import CHECKS, Settings, SettingsError, load_settings
from lti_tool.store.db import Base


def test_environment_overrides_defaults() -> None:
    settings = load_settings(environ={"LTI_TOOL_DYNAMIC_REGISTRATION": "invite",
                                      "LTI_TOOL_SYNC_INTERVAL_MINUTES": "15"})
    assert settings.dynamic_registration == "invite"
    assert settings.sync_interval_minutes == 15


@pytest.mark.parametrize("env", [
    {"LTI_TOOL_DYNAMIC_REGISTRATION": "sometimes"},
    {"LTI_TOOL_BASE_URL": "http://tool.example.edu"},
    {"LTI_TOOL_SYNC_INTERVAL_MINUTES": "soon"},
    {"LTI_TOOL_KEY_STORAGE": "vault"},
    {"LTI_TOOL_SESSION_BINDING": "cookie"},
    {"LTI_TOOL_RATE_LIMIT_VERIFY": "lots"},
    {"LTI_TOOL_VERIFY_TIMEOUT_SECONDS": "0"},
    {"LTI_TOOL_OUTBOUND_ALLOW": "[::1"},
    {"LTI_TOOL_BASE_URL": "tool.example.edu"},
])
def test_bad_settings_are_refused_with_the_variable_named(env: dict) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env)
    assert "LTI_TOOL_" in str(caught.value)


def test_every_bad_setting_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"LTI_TOOL_DYNAMIC_REGISTRATION": "sometimes",
                               "LTI_TOOL_OUTBOUND_MAX_BYTES": "-1",
                               "LTI_TOOL_RATE_LIMIT_LOGIN": "60/fortnight"})
    message = str(caught.value)
    for name in ("DYNAMIC_REGISTRATION", "OUTBOUND_MAX_BYTES", "RATE_LIMIT_LOGIN"):
        assert f"LTI_TOOL_{name} " in message
    assert load_settings(environ={"LTI_TOOL_RATE_LIMIT_LOGIN": "5 per minute; 100/day"})


def test_every_checked_name_is_a_setting() -> None:
    assert set(CHECKS) <= {f.name for f in dataclasses.fields(Settings)}


def test_health(client) -> None:
    reply = client.get("/health")
    assert reply.status_code == 200
    assert reply.get_json() == {"status": "ok"}


def test_unknown_route_is_a_clear_404(client) -> None:
    reply = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert reply.status_code == 404
    assert reply.get_json()["error"] == "not_found"


def test_secret_files_are_created_owner_only(tmp_path) -> None:
    path = tmp_path / "secret"
    value = read_or_create_secret(path, 16)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create_secret(path, 16) == value
    path.chmod(0o644)
    with pytest.raises(InsecureSecretFile):
        read_or_create_secret(path, 16)


def test_migrations_build_every_table(tmp_path) -> None:
    from lti_tool.store.db import make_engine
    from lti_tool.store.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) - {"alembic_version"} == set(Base.metadata.tables)


def test_migrations_match_the_models(db_url) -> None:
    """A model change without a migration fails here (on SQLite and on PostgreSQL)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from lti_tool.store.db import make_engine
    from lti_tool.store.migrate import upgrade

    engine = make_engine(db_url)
    with engine.begin() as conn:  # the fixtures build tables with create_all: start afresh
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(engine)
    with engine.connect() as conn:
        from lti_tool.store.queue_schema import is_queue_object

        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, kind, parent: not is_queue_object(name)})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_a_new_sqlite_database_is_created_owner_only(tmp_path) -> None:
    from lti_tool.store.db import make_engine
    from lti_tool.store.migrate import upgrade

    path = tmp_path / "new" / "tool.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
