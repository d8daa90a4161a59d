"""Migration 0002_institutions on a database that holds data written under 0001.

Each existing registration becomes its own active institution named from the issuer settings;
the catalogue and the badge keys follow, nothing is deleted, and the foreign keys still hold
(SQLite rebuilds tables in batch mode: a cascade there would silently wipe children).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from lti_tool.store.db import Base, make_engine
from lti_tool.store.migrate import upgrade

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def _fresh(db_url: str):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(engine, "0001")
    return engine


def _seed_0001(conn) -> None:
    for pid, issuer in ((1, "https://moodle.example.edu"), (2, "https://canvas.example.edu")):
        conn.execute(text(
            "INSERT INTO platform (id, issuer, client_id, name, lms_kind, auth_login_url,"
            " auth_token_url, auto_accept_deployments, registered_via, created_at)"
            " VALUES (:id, :iss, 'c', :name, 'moodle', 'https://x/login', 'https://x/token',"
            " false, 'manual', :now)"), {"id": pid, "iss": issuer, "name": f"LMS {pid}",
                                          "now": NOW})
        conn.execute(text("INSERT INTO person (id, platform_id, sub, name, given_name,"
                          " family_name, is_admin, updated_at) VALUES (:id, :id, 's', 'n',"
                          " '', '', false, :now)"), {"id": pid, "now": NOW})
        conn.execute(text("INSERT INTO micro_credential (id, platform_id, code, created_at)"
                          " VALUES (:id, :id, 'MC-1', :now)"), {"id": pid, "now": NOW})
        conn.execute(text(
            "INSERT INTO micro_credential_version (id, platform_id, micro_credential_id,"
            " version, status, title, description, kind, language, image, purpose,"
            " target_group, tqf_level, eqf_level, workload_hours, teaching_methods,"
            " assessment_methods, content_plan, stackability, recognition,"
            " quality_assurance, field_of_study, isced_f_code, participation_form,"
            " created_at, updated_at) VALUES (:id, :id, :id, 1, 'approved', 'T', '',"
            " 'course', 'en', '', '', '', 5, 5, '10', '[]', '[]', '', '', '', '', '', '',"
            " '', :now, :now)"), {"id": pid, "now": NOW})
        conn.execute(text(
            "INSERT INTO learning_outcome (id, platform_id, version_id, position, code,"
            " statement, domain, required, levels, threshold) VALUES (:id, :id, :id, 0,"
            " 'LO1', 's', 'skill', true, '[]', 'B')"), {"id": pid})
        conn.execute(text(
            "INSERT INTO audit_entry (at, platform_id, actor_label, action, target, details)"
            " VALUES (:now, :id, 'x', 'mc.approve', 'MC-1', '{}')"), {"id": pid, "now": NOW})
    conn.execute(text(
        "INSERT INTO tool_key (kid, purpose, algorithm, public_jwk, active, created_at)"
        " VALUES ('badge-ed25519-old', 'badge-ed25519', 'EdDSA', '{}', true, :now),"
        " ('lti-old', 'lti', 'RS256', '{}', true, :now)"), {"now": NOW})
    conn.execute(text(
        "INSERT INTO registration_invite (token_hash, note, created_at, expires_at)"
        " VALUES ('h', '', :now, :now)"), {"now": NOW})


def test_each_registration_becomes_its_own_active_institution(db_url, monkeypatch) -> None:
    monkeypatch.setenv("LTI_TOOL_ISSUER_SLUG", "ieu")
    monkeypatch.setenv("LTI_TOOL_ISSUER_NAME", "Izmir University")
    monkeypatch.setenv("LTI_TOOL_ISSUER_COUNTRY", "tr")
    engine = _fresh(db_url)
    with engine.begin() as conn:
        _seed_0001(conn)
    upgrade(engine)
    with engine.connect() as conn:
        institutions = conn.execute(text(
            "SELECT id, slug, name, country FROM institution ORDER BY id")).all()
        assert [(r.slug, r.country) for r in institutions] == [("ieu", "TR"), ("ieu-2", "TR")]
        assert institutions[0].name == "Izmir University"
        assert institutions[1].name == "Izmir University (LMS 2)"
        first, second = institutions[0].id, institutions[1].id
        platforms = conn.execute(text(
            "SELECT id, institution_id, status FROM platform ORDER BY id")).all()
        assert [(p.institution_id, p.status) for p in platforms] == [
            (first, "active"), (second, "active")]
        assert conn.execute(text("SELECT institution_id FROM micro_credential ORDER BY id")
                            ).scalars().all() == [first, second]
        assert conn.execute(text(
            "SELECT institution_id FROM micro_credential_version ORDER BY id")
        ).scalars().all() == [first, second]
        assert conn.execute(text("SELECT institution_id FROM audit_entry ORDER BY id")
                            ).scalars().all() == [first, second]
        keys = dict(conn.execute(text("SELECT kid, institution_id FROM tool_key")).all())
        assert keys == {"badge-ed25519-old": first, "lti-old": None}
        # nothing below a platform was lost in the table rebuilds
        assert conn.execute(text("SELECT count(*) FROM learning_outcome")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM person")).scalar() == 2
        # one-time invites cannot be bound to one of two institutions: dropped
        assert conn.execute(text("SELECT count(*) FROM registration_invite")).scalar() == 0
    engine.dispose()


def test_an_empty_database_migrates_without_institutions(db_url) -> None:
    engine = _fresh(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM institution")).scalar() == 0
    engine.dispose()


@pytest.mark.parametrize("column", ["institution_id", "status"])
def test_registrations_need_an_institution_and_a_status(db_url, column) -> None:
    engine = _fresh(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        nullable = {c["name"]: c["nullable"] for c in
                    __import__("sqlalchemy").inspect(conn).get_columns("platform")}
        assert nullable[column] is False
    engine.dispose()
