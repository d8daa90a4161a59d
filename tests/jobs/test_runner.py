"""The outbox and the runner on the real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from lti_tool.jobs import enqueue, runner
from lti_tool.jobs.office import backlog, listing, purge_finished
from lti_tool.logs import REQUEST_ID
from lti_tool.store.db import utcnow
from lti_tool.store.models.jobs import Job
from tests.jobs.helpers import CALLS


def _job(db, key: str) -> Job:
    db.expire_all()
    return db.scalar(select(Job).where(Job.key == key))


def test_a_job_is_stored_only_when_the_callers_transaction_commits(runtime, db) -> None:
    enqueue(db, "test.record", {"n": 1}, key="k-rolled-back")
    db.rollback()
    assert _job(db, "k-rolled-back") is None
    first = enqueue(db, "test.record", {"n": 1}, key="k-1")
    again = enqueue(db, "test.record", {"n": 2}, key="k-1")  # same key: the same work
    db.commit()
    assert first is not None and again is None
    assert db.scalar(select(func.count()).select_from(Job)) == 1
    assert _job(db, "k-1").payload == {"n": 1}


@pytest.mark.parametrize("kind,key", [("Record", "k"), ("test", "k"), ("test.record", "")])
def test_malformed_kinds_and_keys_are_refused(db, kind, key) -> None:
    with pytest.raises(ValueError):
        enqueue(db, kind, {}, key=key)


def test_the_request_id_follows_the_job(runtime, db, test_registry) -> None:
    token = REQUEST_ID.set("launch-4f2a9c01")
    try:
        job_id = enqueue(db, "test.record", {"n": 3}, key="k-req")
    finally:
        REQUEST_ID.reset(token)
    db.commit()
    seen: list[str | None] = []
    test_registry.kinds["test.record"] = runner.JobKind(
        "test.record", lambda rt, payload: seen.append(REQUEST_ID.get()))
    assert runner.execute(runtime, test_registry, job_id) == "done"
    assert seen == ["launch-4f2a9c01"]
    assert REQUEST_ID.get() is None


def test_a_job_runs_once_and_records_its_result(runtime, db, test_registry) -> None:
    job_id = enqueue(db, "test.record", {"n": 7}, key="k-once")
    db.commit()
    assert runner.execute(runtime, test_registry, job_id) == "done"
    assert runner.execute(runtime, test_registry, job_id) == "not-claimed"
    job = _job(db, "k-once")
    assert (job.status, job.attempts, job.result, job.lease_until) == (
        "done", 1, {"seen": 7}, None)
    assert [("record", {"n": 7, "_attempt": 1, "_job_id": job_id})] == CALLS


def test_failures_are_retried_with_backoff_then_fail_with_the_reason(runtime, db,
                                                                      test_registry) -> None:
    flaky = enqueue(db, "test.flaky", {"succeed_on": 3}, key="k-flaky")
    broken = enqueue(db, "test.broken", {}, key="k-broken")
    db.commit()
    assert runner.execute(runtime, test_registry, flaky) == "retry"
    assert _job(db, "k-flaky").status == "waiting"
    assert runner.execute(runtime, test_registry, flaky) == "retry"
    assert runner.execute(runtime, test_registry, flaky) == "done"
    assert _job(db, "k-flaky").attempts == 3

    assert runner.execute(runtime, test_registry, broken) == "retry"
    assert runner.execute(runtime, test_registry, broken) == "failed"
    job = _job(db, "k-broken")
    assert job.status == "failed" and "scoreMaximum must be positive" in job.last_error
    assert runner.execute(runtime, test_registry, broken) == "not-claimed"


def test_backoff_doubles_and_is_capped() -> None:
    kind = runner.JobKind("x.y", lambda rt, p: None, backoff_base=2, backoff_cap=20)
    assert [kind.backoff(n) for n in range(1, 7)] == [2, 4, 8, 16, 20, 20]


def test_a_waiting_job_is_not_taken_before_its_time(runtime, db, test_registry) -> None:
    job_id = enqueue(db, "test.record", {}, key="k-later",
                     run_after=utcnow() + timedelta(hours=1))
    db.commit()
    assert runner.execute(runtime, test_registry, job_id) == "not-claimed"
    assert runner.due_jobs(runtime) == []


def test_retry_button_runs_a_failed_job_again_only_in_its_registration(
        runtime, db, test_registry, platform) -> None:
    job_id = enqueue(db, "test.broken", {}, key="k-retry", platform_id=platform.id)
    db.commit()
    for _ in range(2):
        runner.execute(runtime, test_registry, job_id)
    assert _job(db, "k-retry").status == "failed"
    assert runner.retry(db, job_id, platform_ids={platform.id + 1}) is False  # not its Office
    assert runner.retry(db, job_id, platform_ids={platform.id}) is True
    db.commit()
    job = _job(db, "k-retry")
    assert (job.status, job.attempts) == ("waiting", 0)
    assert runner.retry(db, job_id, platform_ids={platform.id}) is False  # not failed now


def test_exactly_one_of_many_concurrent_claimers_wins(runtime, db, test_registry) -> None:
    job_id = enqueue(db, "test.record", {"n": 1}, key="k-race")
    db.commit()
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def take(n: int) -> None:
        barrier.wait()
        outcomes.append(runner.execute(runtime, test_registry, job_id, f"w{n}"))

    threads = [threading.Thread(target=take, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["done"] + ["not-claimed"] * 5
    assert [("record", {"n": 1, "_attempt": 1, "_job_id": job_id})] == CALLS


def test_a_job_whose_worker_died_is_taken_again_after_its_lease(runtime, db,
                                                                 test_registry) -> None:
    job_id = enqueue(db, "test.record", {"n": 9}, key="k-dead")
    db.commit()
    assert runner.claim(runtime, job_id, "killed-worker") is not None  # then killed -9
    assert runner.execute(runtime, test_registry, job_id) == "not-claimed"  # lease still live
    db.execute(update(Job).where(Job.id == job_id)
               .values(lease_until=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert runner.due_jobs(runtime) == [job_id]
    assert runner.recover_expired(runtime) == 1
    assert runner.execute(runtime, test_registry, job_id) == "done"
    assert _job(db, "k-dead").attempts == 2


def test_periodic_work_is_stored_once_per_tick_whoever_schedules_it(runtime, db,
                                                                     test_registry) -> None:
    at = datetime(2026, 12, 1, 10, 7, 30, tzinfo=UTC)
    first = runner.schedule_periodic(runtime, test_registry, at)
    second = runner.schedule_periodic(runtime, test_registry, at + timedelta(minutes=2))
    third = runner.schedule_periodic(runtime, test_registry, at + timedelta(minutes=3))
    assert len(first) == 1 and second == [] and len(third) == 1
    keys = set(db.scalars(select(Job.key)))
    assert keys == {"test.record@2026-12-01T10:05:00Z", "test.record@2026-12-01T10:10:00Z"}


def test_the_in_process_runner_runs_work_soon_after_the_commit(runtime, db,
                                                               test_registry) -> None:
    job_runner = runner.InProcessRunner(runtime, test_registry, poll=30, periodic=False).start()
    try:
        enqueue(db, "test.record", {"n": 5}, key="k-wake")
        db.commit()  # wakes the runner: it does not wait for its 30 s poll
        for _ in range(200):
            if _job(db, "k-wake").status == "done":
                break
            threading.Event().wait(0.05)
    finally:
        job_runner.stop()
    assert _job(db, "k-wake").status == "done"


def test_the_office_sees_the_backlog_and_finished_jobs_are_purged(runtime, db, test_registry,
                                                                   platform) -> None:
    for n in range(3):
        enqueue(db, "test.record", {"n": n}, key=f"k-b{n}", platform_id=platform.id)
    enqueue(db, "test.record", {}, key="k-other")  # installation-wide
    db.commit()
    queue = backlog(db, {platform.id})
    assert queue.counts["waiting"] == 3 and queue.oldest_waiting is not None
    runner.execute(runtime, test_registry, _job(db, "k-b0").id)
    assert backlog(db, {platform.id}).counts == {"waiting": 2, "running": 0, "done": 1,
                                                 "failed": 0}
    assert {j.key for j in listing(db, {platform.id})} == {"k-b1", "k-b2"}
    assert purge_finished(db, days=14) == 0
    db.execute(update(Job).where(Job.key == "k-b0")
               .values(finished_at=utcnow() - timedelta(days=15)))
    assert purge_finished(db, days=14) == 1
