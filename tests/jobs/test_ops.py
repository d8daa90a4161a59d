"""Operations endpoints and the Office's jobs page, through the real app."""

from __future__ import annotations

import json
import logging

from lti_tool.jobs import enqueue, runner
from lti_tool.logs import JsonFormatter, new_request_id
from lti_tool.store.models.jobs import Job
from lti_tool.web.auth import CSRF_HEADER
from testkit.seed import seed_course
from tests.conftest import session_headers
from tests.pages.test_authorization_matrix import csrf_for


def test_liveness_does_not_need_the_database(client) -> None:
    assert client.get("/health").get_json() == {"status": "ok"}


def test_readiness_fails_while_the_schema_is_behind_or_the_database_is_gone(app, runtime,
                                                                            client) -> None:
    from lti_tool.web.ops import _script

    with runtime.engine.begin() as conn:  # tables from create_all: no recorded revision yet
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    reply = client.get("/ready")
    assert reply.status_code == 503 and "db upgrade" in reply.get_json()["reason"]
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0001')")  # an older one
    reply = client.get("/ready")
    assert reply.status_code == 503 and "behind" in reply.get_json()["reason"]
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    assert client.get("/ready").status_code == 200  # a rolling upgrade: newer is fine
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = "
                             f"'{_script().get_current_head()}'")
    assert client.get("/ready").get_json() == {"status": "ready"}

    app.extensions["lti_tool"].engine.dispose()
    original = app.extensions["lti_tool"].sessions.kw["bind"]
    from lti_tool.store.db import make_engine

    gone = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    app.extensions["lti_tool"].sessions.configure(bind=gone)
    try:
        reply = client.get("/ready")
        assert reply.status_code == 503
        assert "cannot be reached" in reply.get_json()["reason"]
        assert client.get("/health").status_code == 200
        metrics = client.get("/metrics").get_data(as_text=True)
        assert "lti_tool_database_up 0.0" in metrics
    finally:
        app.extensions["lti_tool"].sessions.configure(bind=original)


def test_metrics_show_launches_errors_queue_and_credentials(client, db) -> None:
    enqueue(db, "grades.passback", {"context_id": 1}, key="m-1")
    db.commit()
    client.post("/lti/launch", data={})  # a launch with no id_token: counted as an error
    body = client.get("/metrics").get_data(as_text=True)
    assert 'lti_tool_launches_total{outcome="error"}' in body
    assert 'lti_tool_errors_total{kind="' in body
    assert 'lti_tool_jobs{status="waiting"} 1.0' in body
    assert "lti_tool_job_oldest_unfinished_seconds" in body
    assert "lti_tool_credentials_issued_total 0.0" in body
    assert "lti_tool_database_up 1.0" in body


def test_metrics_can_require_a_bearer_token(client, monkeypatch) -> None:
    monkeypatch.setenv("LTI_TOOL_METRICS_TOKEN", "s3cret-token")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics",
                      headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_every_answer_carries_a_request_id_and_logs_are_json(client) -> None:
    reply = client.get("/health", headers={"X-Request-Id": "edge-1234abcd"})
    assert reply.headers["X-Request-Id"] == "edge-1234abcd"
    forged = client.get("/health", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert forged.headers["X-Request-Id"] != "<script>alert(1)</script>"
    assert len(new_request_id(None)) == 32
    record = logging.LogRecord("lti_tool.x", logging.INFO, __file__, 1, "sent %s", ("3",), None)
    record.request_id, record.job_id = "edge-1234abcd", 7
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["request_id"], line["job_id"]) == ("sent 3", "edge-1234abcd", 7)


def test_the_office_sees_its_institutions_jobs_only_and_retries_them(
        client, db, runtime, test_registry) -> None:
    """Two institutions; the first has two registrations (a Moodle and a Canvas, say). Its
    Office sees and retries the failed jobs of both, never the other institution's (a 404),
    nor installation-wide work."""
    from lti_tool.store.models.core import Platform

    course = seed_course(db)
    other = seed_course(db, issuer="https://other.invalid")
    mine = db.get(Platform, course.platform_id)
    sibling = Platform(institution_id=mine.institution_id, status="active",
                       issuer="https://canvas.invalid", client_id="c-2", name="Second LMS",
                       auth_login_url="https://canvas.invalid/auth",
                       auth_token_url="https://canvas.invalid/token")
    db.add(sibling)
    db.commit()
    assert db.get(Platform, other.platform_id).institution_id != mine.institution_id
    ours = enqueue(db, "test.broken", {}, key="o-1", platform_id=course.platform_id)
    sister = enqueue(db, "test.broken", {}, key="o-3", platform_id=sibling.id)
    theirs = enqueue(db, "test.broken", {}, key="o-2", platform_id=other.platform_id)
    nobodys = enqueue(db, "test.broken", {}, key="o-4")  # installation-wide work
    db.commit()
    for job_id in (ours, sister, theirs, nobodys):
        for _ in range(2):
            runner.execute(runtime, test_registry, job_id)
    token = course.tokens["admin"]
    page = client.get("/admin/jobs/", headers=session_headers(token))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-job-id="{ours}"' in html and f'data-job-id="{sister}"' in html
    assert f'data-job-id="{theirs}"' not in html and f'data-job-id="{nobodys}"' not in html
    assert "Second LMS" in html  # which registration a job is for
    assert "scoreMaximum must be positive" in html
    assert '<dd data-status="failed">2</dd>' in html
    headers = {CSRF_HEADER: csrf_for(client.application, client, token),
               **session_headers(token)}
    for refused_id in (theirs, nobodys):
        refused = client.post(f"/admin/jobs/{refused_id}/retry", headers=headers)
        assert refused.status_code == 404  # another institution's job, or nobody's
    for job_id in (ours, sister):
        done = client.post(f"/admin/jobs/{job_id}/retry", headers=headers)
        assert done.status_code == 303, done.get_data(as_text=True)[:300]
    db.expire_all()
    assert [db.get(Job, j).status for j in (ours, sister, theirs, nobodys)] == [
        "waiting", "waiting", "failed", "failed"]
    # the other institution's Office sees its own job only
    their_page = client.get("/admin/jobs/", headers=session_headers(other.tokens["admin"]))
    their_html = their_page.get_data(as_text=True)
    assert f'data-job-id="{theirs}"' in their_html and f'data-job-id="{ours}"' not in their_html
    learner = client.get("/admin/jobs/", headers=session_headers(course.tokens["learner1"]))
    assert learner.status_code == 403
