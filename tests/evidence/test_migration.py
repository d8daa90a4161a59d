"""Migration 0008 re-links chains written by 0001 and refuses a chain that was rewritten."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from lti_tool.cli import main
from lti_tool.runtime import Runtime
from lti_tool.store.db import Base, make_engine, make_session_factory
from lti_tool.store.migrate import upgrade


def _old_chain(conn, payloads: list[dict]) -> None:
    """Write a platform and its chain exactly as revision 0001's code did."""
    conn.execute(text("INSERT INTO platform (id, issuer, client_id, name, lms_kind, "
                      "auth_login_url, auth_token_url, auto_accept_deployments, registered_via, "
                      "created_at) VALUES (1, 'https://lms.example.edu', 'tool', '', 'moodle', "
                      "'https://lms.example.edu/a', 'https://lms.example.edu/t', false, 'manual',"
                      " CURRENT_TIMESTAMP)"))
    prev = "0" * 64
    for seq, payload in enumerate(payloads, start=1):
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest()
        conn.execute(text("INSERT INTO evidence_record (platform_id, seq, event, payload, "
                          "prev_hash, hash, created_at) VALUES (1, :s, :e, :p, :prev, :h, "
                          "CURRENT_TIMESTAMP)"),
                     {"s": seq, "e": payload["event"], "p": canonical, "prev": prev, "h": digest})
        prev = digest
    conn.execute(text("INSERT INTO evidence_head (platform_id, seq, last_hash) VALUES "
                      "(1, :s, :h)"), {"s": len(payloads), "h": prev})


def _drop(engine) -> None:
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


@pytest.fixture
def engines(db_url: str):
    """Engines on the test database; the tables the other tests expect are rebuilt after."""
    made = []
    yield lambda: made.append(make_engine(db_url)) or made[-1]
    for engine in made:
        _drop(engine)
        Base.metadata.create_all(engine)
        engine.dispose()


def _fresh(engines) -> object:
    engine = engines()
    _drop(engine)
    upgrade(engine, "0001")
    return engine


PAYLOADS = [{"event": "failed", "to": "failed", "n": n} for n in range(4)]


def test_old_chains_are_relinked_then_sealed_and_verify(engines, settings) -> None:
    engine = _fresh(engines)
    with engine.begin() as conn:
        _old_chain(conn, PAYLOADS)
    upgrade(engine)
    runtime = Runtime(settings=settings, engine=engine, sessions=make_session_factory(engine))
    runner = CliRunner()
    unsealed = runner.invoke(main, ["evidence", "verify"], obj={"runtime": runtime})
    assert unsealed.exit_code == 1
    assert "records seq 1 to 4 are not covered by a signed checkpoint" in unsealed.stderr
    sealed = runner.invoke(main, ["evidence", "checkpoint"], obj={"runtime": runtime})
    assert sealed.exit_code == 0 and "Signed 1 checkpoint(s)" in sealed.output
    ok = runner.invoke(main, ["evidence", "verify"], obj={"runtime": runtime})
    assert ok.exit_code == 0, ok.output
    assert "4 records and 1 signed checkpoints" in ok.output


def test_a_rewritten_old_chain_is_refused(engines) -> None:
    engine = _fresh(engines)
    with engine.begin() as conn:
        _old_chain(conn, PAYLOADS)
        conn.execute(text("UPDATE evidence_record SET payload = replace(payload, 'failed', "
                          "'passed') WHERE seq = 2"))
    with pytest.raises(RuntimeError, match=r"seq 2\) does not verify under the old chain"):
        upgrade(engine)
