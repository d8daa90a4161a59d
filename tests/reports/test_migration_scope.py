"""Migration 0012_reports_scope on a database written under 0010: every quality-cycle row gets
its institution, one survey question set per institution is kept, and nothing else is lost
(SQLite rebuilds the tables in batch mode; PostgreSQL alters them in place)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from lti_tool.store.db import Base, make_engine
from lti_tool.store.migrate import upgrade

NOW = datetime(2025, 6, 1, tzinfo=UTC)
FILLERS = ((sa.Boolean, False), (sa.Integer, 1), (sa.DateTime, NOW), (sa.JSON, {}),
           (sa.String, "x"), (sa.Text, ""))


def _insert(conn, meta: sa.MetaData, name: str, **values) -> int:
    """A row with `values`, every other required column filled with a plain value."""
    table = meta.tables[name]
    for column in table.columns:
        if column.name in values or column.nullable or column.primary_key:
            continue
        values[column.name] = next((v for kind, v in FILLERS if isinstance(column.type, kind)),
                                   "x")
    return conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one()


def _seed_0010(conn) -> dict:
    meta = sa.MetaData()
    meta.reflect(conn)
    ids: dict = {}
    for key in ("a", "b"):
        ids[key] = _insert(conn, meta, "institution", slug=f"uni-{key}", country="TR")
    for key, inst in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        ids[key] = _insert(conn, meta, "platform", institution_id=ids[inst], status="active",
                           issuer=f"https://{key}.example", client_id="c",
                           managed_by_id=None)
        ids[f"person-{key}"] = _insert(conn, meta, "person", platform_id=ids[key], sub=key)
    for key in ("a", "b"):
        ids[f"mc-{key}"] = _insert(conn, meta, "micro_credential", institution_id=ids[key],
                                   platform_id=ids[f"{key}1"], code="MC")
        ids[f"v-{key}"] = _insert(conn, meta, "micro_credential_version",
                                  institution_id=ids[key], platform_id=ids[f"{key}1"],
                                  micro_credential_id=ids[f"mc-{key}"], version=1,
                                  created_by_person_id=None, approved_by_person_id=None,
                                  revalidated_by_person_id=None, workload_hours="10")
    # a2 runs institution a's micro-credential (one catalogue for the institution's LMSs)
    for key, inst in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        context = _insert(conn, meta, "context", platform_id=ids[key], context_id=key)
        ids[f"o-{key}"] = _insert(conn, meta, "offering", platform_id=ids[key],
                                  context_id=context, mc_version_id=ids[f"v-{inst}"],
                                  resource_link_id=None)
        person = ids[f"person-{key}"]
        _insert(conn, meta, "survey_response", platform_id=ids[key],
                offering_id=ids[f"o-{key}"], person_id=person)
        _insert(conn, meta, "contact_consent", platform_id=ids[key], person_id=person)
        _insert(conn, meta, "instructor_reflection", platform_id=ids[key],
                offering_id=ids[f"o-{key}"], person_id=person)
        for code in ("q1", "q2"):  # each registration had its own question set
            _insert(conn, meta, "survey_question", platform_id=ids[key], code=code,
                    text_en=f"{key} {code}")
    for key in ("a", "b"):
        # written through the second registration (a2) for a: the MC decides
        platform = ids["a2" if key == "a" else "b1"]
        _insert(conn, meta, "survey_comment", platform_id=platform,
                micro_credential_id=ids[f"mc-{key}"], year=2025, text="t")
        link = _insert(conn, meta, "stakeholder_link", platform_id=platform,
                       micro_credential_id=ids[f"mc-{key}"], token=f"tok-{key}")
        _insert(conn, meta, "stakeholder_feedback", platform_id=platform,
                micro_credential_id=ids[f"mc-{key}"], link_id=link, rating=None)
        _insert(conn, meta, "improvement_action", platform_id=platform,
                micro_credential_id=ids[f"mc-{key}"], created_by_person_id=None)
        _insert(conn, meta, "improvement_action", platform_id=platform,
                micro_credential_id=None, created_by_person_id=None)
    return ids


TABLES = ("survey_response", "contact_consent", "instructor_reflection", "survey_comment",
          "stakeholder_link", "stakeholder_feedback", "improvement_action")


def test_every_row_gets_its_institution_and_one_question_set_is_kept(db_url) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(engine, "0010_lms_story")
    with engine.begin() as conn:
        ids = _seed_0010(conn)
    upgrade(engine, "0012_reports_scope")
    by_id = {ids["a"]: "a", ids["b"]: "b"}
    with engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(sa.text(
                f"SELECT t.institution_id, p.institution_id AS via_platform FROM {table} t"
                " JOIN platform p ON p.id = t.platform_id")).all()
            assert rows and all(r.institution_id == r.via_platform for r in rows), table
        counts = dict(conn.execute(sa.text(
            "SELECT institution_id, count(*) FROM improvement_action GROUP BY institution_id"
        )).all())
        assert {by_id[k]: v for k, v in counts.items()} == {"a": 2, "b": 2}
        questions = conn.execute(sa.text(
            "SELECT institution_id, code, text_en FROM survey_question ORDER BY 1, 2")).all()
        assert [(by_id[r.institution_id], r.code, r.text_en) for r in questions] == [
            ("a", "q1", "a1 q1"), ("a", "q2", "a1 q2"), ("b", "q1", "b1 q1"),
            ("b", "q2", "b1 q2")]  # the oldest registration's set
        assert conn.execute(sa.text("SELECT count(*) FROM survey_response")).scalar() == 3
    upgrade(engine)  # back at head: the next test on this (PostgreSQL) database needs every table
    engine.dispose()
