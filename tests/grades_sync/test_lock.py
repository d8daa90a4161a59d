"""At most one sync per context: threads, processes, and leases left by crashed workers."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from lti_tool.grades.sync import SyncBusy, acquire_lease, release_lease, sync_context
from lti_tool.runtime import Runtime
from lti_tool.store.models.grades import SyncLock, SyncRun
from testkit.fakelms import FakeLms
from testkit.fakelms.workers import race_for_lease
from tests.fakelms.pytest_fixtures import make_context


def test_two_concurrent_syncs_of_one_context_do_not_both_run(
        fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    # The first sync's roster request is held until the second sync has been refused: the
    # overlap is certain, whatever the machine's load.
    roster = moodle_lms.hold("/memberships")
    outcomes: list[str] = []
    refused = threading.Event()
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            outcomes.append(sync_context(fast_runtime, context_id).status)
        except SyncBusy as exc:
            outcomes.append(exc.code)
            refused.set()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert refused.wait(30)
    roster.release()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["succeeded", "sync_running"]
    with fast_runtime.sessions() as db:
        assert [r.status for r in db.scalars(select(SyncRun))] == ["succeeded"]
        assert db.get(SyncLock, context_id) is None  # released
    assert moodle_lms.count("/memberships") == 1


def test_only_one_process_gets_the_lease(fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    url = fast_runtime.settings.database_url
    results = ctx.Queue()
    workers = [ctx.Process(target=race_for_lease, args=(url, context_id, barrier, results))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    owners = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    winners = [o for o in owners if o]
    assert len(winners) == 1
    with fast_runtime.sessions() as db:
        assert db.get(SyncLock, context_id).owner == winners[0]


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(
        fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    factory = fast_runtime.sessions
    crashed = acquire_lease(factory, context_id, lease=timedelta(seconds=-1))
    assert crashed is not None
    successor = acquire_lease(factory, context_id)
    assert successor not in (None, crashed)
    assert acquire_lease(factory, context_id) is None
    release_lease(factory, context_id, crashed)  # the old owner cannot release it any more
    assert acquire_lease(factory, context_id) is None
    release_lease(factory, context_id, successor)
    assert acquire_lease(factory, context_id) is not None


def test_a_running_sync_answers_busy(fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    assert acquire_lease(fast_runtime.sessions, context_id)
    with pytest.raises(SyncBusy) as caught:
        sync_context(fast_runtime, context_id)
    assert "already running" in caught.value.message
    assert moodle_lms.log == []


def test_a_jobs_own_earlier_lease_is_taken_over_at_once_and_anothers_is_not(
        fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    """A worker killed mid-sync leaves a live lease (ten minutes): the retry of the same job
    takes it over, another job's sync still finds the course busy."""
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    factory = fast_runtime.sessions
    killed = acquire_lease(factory, context_id, holder="job-7-")
    assert killed is not None and killed.startswith("job-7-")
    assert acquire_lease(factory, context_id, holder="job-8-") is None  # another job: busy
    assert acquire_lease(factory, context_id) is None  # a sync outside a job: busy
    retry = acquire_lease(factory, context_id, holder="job-7-")
    assert retry not in (None, killed) and retry.startswith("job-7-")
    with factory() as db:
        assert db.get(SyncLock, context_id).owner == retry


def test_the_retried_sync_job_runs_the_sync_its_killed_attempt_began(
        fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    from lti_tool.jobs.registry import sync_job

    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    assert acquire_lease(fast_runtime.sessions, context_id, holder="job-41-")  # attempt 1, killed
    skipped = sync_job(fast_runtime, {"context_id": context_id, "_attempt": 1, "_job_id": 40})
    assert skipped["status"] == "skipped"  # another job finds the course busy
    result = sync_job(fast_runtime, {"context_id": context_id, "_attempt": 2, "_job_id": 41})
    assert result["status"] == "succeeded"
    with fast_runtime.sessions() as db:
        assert [r.status for r in db.scalars(select(SyncRun))] == ["succeeded"]
        assert db.get(SyncLock, context_id) is None  # released after the sync
