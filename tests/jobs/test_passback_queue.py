"""Grade passback through the job queue: queued with the decision, sent at once by a worker.

The LMS is the fake Moodle (tests/fakelms) answering AGS with the captured shapes; the worker
is the in-process runner (SQLite, the demo) or a real `lti-tool worker` process running
procrastinate (PostgreSQL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from lti_tool.domain.evaluation import GRADE_ITEM, SourceSpec
from lti_tool.grades import evaluation as ev
from lti_tool.grades.sync import sync_context
from lti_tool.jobs.registry import registry
from lti_tool.jobs.runner import InProcessRunner
from lti_tool.runtime import Runtime
from lti_tool.store.models.core import Context
from lti_tool.store.models.evaluation import GradePassback
from lti_tool.store.models.grades import GradeItem
from lti_tool.store.models.jobs import Job
from testkit.fakelms import FakeLms
from testkit.fakelms.data import Result
from tests.conftest import POSTGRES_URL, stamp_head
from tests.evaluation.conftest import seed_course
from tests.fakelms.pytest_fixtures import make_context

STAMP = "2026-11-22T17:55:04+00:00"


def _course_ready_to_pass(runtime: Runtime, fake: FakeLms) -> tuple[int, int, dict]:
    """A synced course whose learner 4 passes as soon as the mapping is saved."""
    fake.course.results[6] = {"4": Result(45, 50, STAMP)}
    fake.course.results[7] = {"4": Result(75, 100, STAMP)}
    context_id = make_context(runtime, fake, rest=False)
    with runtime.sessions() as db:
        course = seed_course(db, context=db.get(Context, context_id), subs=["4", "5"])
        offering_id, by = course.offering.id, course.by
        db.commit()
    assert sync_context(runtime, context_id).status == "succeeded"
    with runtime.sessions() as db:
        item = {n: db.scalar(select(GradeItem.id).where(
            GradeItem.external_id == fake.lineitem_url(n))) for n in (5, 6, 7)}
    mapping = {f"LO{k}": [SourceSpec(GRADE_ITEM, str(item[n]), Decimal(1))]
               for k, n in ((1, 5), (2, 6), (3, 7))}
    return context_id, offering_id, {"mapping": mapping, "by": by}


def _passback_jobs(runtime: Runtime) -> list[Job]:
    with runtime.sessions() as db:
        return list(db.scalars(select(Job).where(Job.kind == "grades.passback")
                               .order_by(Job.id)))


def test_a_decision_queues_its_passback_in_its_own_transaction(fast_runtime, moodle_lms) -> None:
    runtime = fast_runtime
    context_id, offering_id, plan = _course_ready_to_pass(runtime, moodle_lms)
    before = len(_passback_jobs(runtime))  # the sync's evaluation queued "in progress" scores
    with runtime.sessions() as db:
        ev.save_mapping(db, runtime.settings, offering_id, plan["mapping"], plan["by"])
        db.rollback()  # the decision is not recorded: neither is its passback
    assert len(_passback_jobs(runtime)) == before
    with runtime.sessions() as db:
        ev.save_mapping(db, runtime.settings, offering_id, plan["mapping"], plan["by"])
        db.commit()
    jobs = _passback_jobs(runtime)
    assert len(jobs) == before + 1  # one job for the course, however many learners changed
    assert (jobs[-1].status, jobs[-1].payload) == ("waiting", {"context_id": context_id})
    with runtime.sessions() as db:
        assert {row.status for row in db.scalars(select(GradePassback))} == {"pending"}
        ev.evaluate_changed(db, runtime.settings, context_id)  # nothing changed
        db.commit()
    assert len(_passback_jobs(runtime)) == before + 1  # an unchanged score queues nothing


def test_the_runner_sends_the_score_as_soon_as_the_decision_commits(fast_runtime,
                                                                     moodle_lms) -> None:
    runtime, fake = fast_runtime, moodle_lms
    _, offering_id, plan = _course_ready_to_pass(runtime, fake)
    before = len(_passback_jobs(runtime))
    job_runner = InProcessRunner(runtime, registry(), poll=60, periodic=False).start()
    try:
        with runtime.sessions() as db:
            ev.save_mapping(db, runtime.settings, offering_id, plan["mapping"], plan["by"])
            db.commit()  # wakes the runner at once; its 60 s poll never comes into play
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                len(jobs := _passback_jobs(runtime)) > before
                and {j.status for j in jobs} == {"done"}):
            time.sleep(0.05)
    finally:
        job_runner.stop()
    latest = {s["userId"]: s["scoreGiven"] for s in fake.posted_scores}
    assert (latest["4"], latest["5"]) == (100.0, 0.0)
    assert [c["label"] for c in fake.created_line_items] == ["Micro-credential: Data Literacy"]
    assert fake.course.results[10]["4"].score == 100.0
    jobs = _passback_jobs(runtime)
    assert {(j.status, j.attempts) for j in jobs} == {("done", 1)}
    with runtime.sessions() as db:
        rows = list(db.scalars(select(GradePassback)))
    assert {row.status for row in rows} == {"sent"}
    # each score the LMS got once per change: in progress after the sync, then the pass
    assert sum(j.result["sent"] for j in jobs) == len(fake.posted_scores)


def test_an_lms_that_refuses_leaves_the_job_waiting_with_the_reason(fast_runtime,
                                                                     moodle_lms) -> None:
    runtime, fake = fast_runtime, moodle_lms
    _, offering_id, plan = _course_ready_to_pass(runtime, fake)
    fake.fail("/scores", status=500, times=100)
    with runtime.sessions() as db:
        ev.save_mapping(db, runtime.settings, offering_id, plan["mapping"], plan["by"])
        db.commit()
    InProcessRunner(runtime, registry(), periodic=False).run_once()
    job = _passback_jobs(runtime)[-1]
    assert job.status == "waiting" and job.attempts == 1
    assert "could not be sent yet" in job.last_error
    assert job.run_after > job.updated_at  # backoff before the next attempt


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (LTI_TOOL_TEST_DATABASE_URL)")
def test_a_worker_process_on_postgresql_sends_the_score_within_seconds(fast_runtime, moodle_lms,
                                                                        tmp_path) -> None:
    runtime, fake = fast_runtime, moodle_lms
    _, offering_id, plan = _course_ready_to_pass(runtime, fake)
    # `lti-tool worker` migrates its database first, as in production. The test database is
    # built at head from the models (create_all, which tests/test_foundation.py proves equal to
    # the migrations) without Alembic's record of it: without the stamp the worker would run
    # every migration on top of existing tables and stop (what this test once tripped on, only
    # when no migration test had stamped the shared database before it).
    stamp_head(runtime.engine)
    env = {**os.environ, "PYTHONPATH": os.getcwd(),
           "LTI_TOOL_DATABASE_URL": runtime.settings.database_url,
           "LTI_TOOL_DATA_DIR": str(tmp_path / "worker"), "LTI_TOOL_SECRET_KEY": "test",
           "LTI_TOOL_SYNC_RETRY_ATTEMPTS": "2", "LTI_TOOL_SYNC_RETRY_BASE_DELAY": "0.01",
           # the fake LMS runs on loopback: this worker may call it (as the test's runtime may)
           "LTI_TOOL_OUTBOUND_ALLOW": runtime.settings.outbound_allow}
    worker = subprocess.Popen([sys.executable, "-m", "lti_tool.cli", "worker"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with runtime.sessions() as db:  # stored before the worker listens: fetched anyway
            ev.save_mapping(db, runtime.settings, offering_id, plan["mapping"], plan["by"])
            db.commit()
        deadline = time.monotonic() + 180  # a bound for a loaded CI machine, not a timing
        while time.monotonic() < deadline and not any(
                s["userId"] == "4" and s["scoreGiven"] == 100.0 for s in fake.posted_scores):
            time.sleep(0.1)
    finally:
        worker.terminate()  # SIGTERM: a graceful stop
        output = worker.communicate(timeout=60)[0]
    assert worker.returncode == 0, output
    latest = {s["userId"]: s["scoreGiven"] for s in fake.posted_scores}
    assert (latest.get("4"), latest.get("5")) == (100.0, 0.0), output
    assert {j.status for j in _passback_jobs(runtime)} == {"done"}, output
    assert '"message": "job ' in output  # JSON log lines


def test_the_sync_page_says_why_scores_wait(fast_runtime, moodle_lms) -> None:
    """Queued (a worker takes them at once), the LMS refused (the next attempt), queued for
    minutes with no worker (say so), a worker sending them now."""
    from datetime import timedelta

    from lti_tool.grades.passback import passback_status

    runtime, fake = fast_runtime, moodle_lms
    context_id, offering_id, plan = _course_ready_to_pass(runtime, fake)
    with runtime.sessions() as db:
        ev.save_mapping(db, runtime.settings, offering_id, plan["mapping"], plan["by"])
        db.commit()
    with runtime.sessions() as db:
        status = passback_status(db, context_id)
        assert status["waiting"] > 0 and status["waiting_reason"] == {"code": "queued"}
        for job in db.scalars(select(Job).where(Job.kind == "grades.passback")):
            job.run_after -= timedelta(minutes=10)
        db.commit()
        assert passback_status(db, context_id)["waiting_reason"]["code"] == "stalled"
    fake.fail("/scores", status=500, times=100)
    InProcessRunner(runtime, registry(), periodic=False).run_once()
    with runtime.sessions() as db:
        why = passback_status(db, context_id)["waiting_reason"]
        assert why["code"] == "retry" and why["at"] > datetime.now(UTC)
        job = db.scalars(select(Job).where(Job.kind == "grades.passback",
                                           Job.status == "waiting")).first()
        job.status = "running"
        db.commit()
        assert passback_status(db, context_id)["waiting_reason"] == {"code": "sending"}
