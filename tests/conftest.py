"""Shared fixtures: settings, a database (SQLite per test, or the PostgreSQL that
LTI_TOOL_TEST_DATABASE_URL names), the Flask app and its test client.

Area-specific fixtures live in the conftest.py of each tests/<area>/ folder.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, text

import lti_tool.store.models  # noqa: F401
from lti_tool.runtime import Runtime
from lti_tool.settings import Settings, load_settings
from lti_tool.store import queue_schema
from lti_tool.store.db import Base, make_engine, make_session_factory
from testkit.institutions import (  # noqa: F401  (tests import them from here)
    TEST_INSTITUTION,
    base_institution,
    institution_for_new_platform,
)

# Property tests find bugs, not slowness: no per-example deadline (Hypothesis's 200 ms default
# fails on a loaded 2-core CI machine; speed is measured in bench/).
hypothesis_settings.register_profile("tool", deadline=None)
hypothesis_settings.load_profile("tool")

SHARED = Path(__file__).resolve().parents[2] / "shared"
if not SHARED.is_dir():  # CI lays shared/ beside the clone
    SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"
SPEC = SHARED / "spec"
POSTGRES_URL = os.environ.get("LTI_TOOL_TEST_DATABASE_URL", "")


def skip_unless_installed(what: str) -> None:
    """Skip on a developer machine that lacks an optional tool; in CI a missing tool fails."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: .ci/run should have installed it")
    pytest.skip(f"{what} is not installed")


def load_fixture(*parts: str):
    import json

    return json.loads(FIXTURES.joinpath(*parts).read_text())


@functools.cache
def _worker_database(url: str) -> str:
    """One PostgreSQL database per xdist worker, created on first use, so workers never meet."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = make_engine(base.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.scalar() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _postgres_engine() -> Iterator[Engine | None]:
    if not POSTGRES_URL:
        yield None
        return
    engine = make_engine(_worker_database(POSTGRES_URL))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:  # the job queue's own schema (migration 0009_jobs)
        queue_schema.apply(conn)
    yield engine
    engine.dispose()


@pytest.fixture
def db_url(tmp_path: Path, _postgres_engine: Engine | None) -> str:
    if _postgres_engine is not None:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with _postgres_engine.begin() as conn:
            # A connection an earlier test left open (idle in a transaction) would hold its
            # locks and make TRUNCATE wait for ever: end such leftovers of this worker first.
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND state LIKE 'idle in transaction%'"))
            conn.execute(text("SET LOCAL lock_timeout = '60s'"))
            conn.execute(text(f"TRUNCATE {tables}, procrastinate_jobs,"
                              " procrastinate_periodic_defers RESTART IDENTITY CASCADE"))
        return _worker_database(POSTGRES_URL)
    return f"sqlite:///{tmp_path / 'tool.db'}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        overrides={
            "database_url": db_url,
            "data_dir": str(tmp_path / "instance"),
            "base_url": "http://127.0.0.1:8000",
            "testing": True,
            "secret_key": "test-secret",
            # Background syncs after launches are tested on their own (tests/launch).
            "sync_after_launch": False,
            # Rate limits are tested on their own, with the defaults (tests/security); here
            # a test may log in or verify many times from the one test client.
            "rate_limit_login": "100000/minute",
            "rate_limit_register": "100000/minute",
            "rate_limit_verify": "100000/minute",
        },
        environ={},
    )


# Every test database starts with one institution (TEST_INSTITUTION, in testkit so bench/ can
# seed the same); `institution_for_new_platform` gives each further registration its own.


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    from lti_tool.store.models.core import Institution

    engine = make_engine(settings.database_url)
    if not POSTGRES_URL:
        Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        session.add(Institution(**TEST_INSTITUTION))
        session.commit()
    yield Runtime(settings=settings, engine=engine, sessions=sessions)
    engine.dispose()


@pytest.fixture
def db(runtime: Runtime):
    session = runtime.sessions()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def app(runtime: Runtime):
    from lti_tool.web import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def session_headers(token: str) -> dict[str, str]:
    """A cookie-less session as the tool's pages' scripts send it (a token never goes in URLs)."""
    from lti_tool.web.auth import SESSION_HEADER

    return {SESSION_HEADER: token}


def stamp_head(engine: Engine) -> None:
    """Record the test database (built at head by create_all) as migrated to head, as
    `lti-tool db upgrade` leaves it, for processes that migrate their database when they start
    (`lti-tool serve`, `lti-tool worker`). Whatever an earlier test left recorded is replaced."""
    from alembic import command

    from lti_tool.store.migrate import alembic_config

    command.stamp(alembic_config(engine), "head", purge=True)
