"""Entry points of the sync: the instructor page and "Sync now" (a durable job a worker runs),
the CLI, the scheduled job, and the sync requested by a launch."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import pty
import re
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from lti_tool.cli import main
from lti_tool.grades import jobs
from lti_tool.grades.sync import request_sync, sync_context
from lti_tool.runtime import Runtime
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion, Offering
from lti_tool.store.models.core import Context, Person, Platform, WebSession
from lti_tool.store.models.grades import SyncProgress, SyncRun
from lti_tool.store.models.jobs import Job
from lti_tool.web import create_app
from lti_tool.web.auth import SESSION_HEADER, start_session, token_hash
from testkit.fakelms import FakeLms
from tests.fakelms.pytest_fixtures import make_context
from tests.sync_jobs import run_jobs, run_jobs_in_background


def _session(runtime: Runtime, context_id: int, role: str) -> dict[str, str]:
    """Headers of a launched session (token and CSRF) for `role` in the context."""
    with runtime.sessions() as db:
        context = db.get(Context, context_id)
        person = Person(platform_id=context.platform_id, sub=f"{role}-1", name=role)
        db.add(person)
        db.flush()
        token = start_session(db, platform_id=context.platform_id, person_id=person.id,
                              context_id=context_id, resource_link_id=None, role=role)
        secret = db.scalar(select(WebSession.csrf_secret).where(
            WebSession.token_hash == token_hash(token)))
        db.commit()
    csrf = hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest()
    return {SESSION_HEADER: token, "X-CSRF-Token": csrf}


def _run_and_status(runtime: Runtime, client, headers: dict) -> dict:
    """Run the stored jobs (as a worker does), then the page's status."""
    run_jobs(runtime)
    body = client.get("/instructor/sync/status.json", headers=headers).get_json()
    assert not body["running"] and not body["waiting"]
    return body


def _sync_jobs(runtime: Runtime) -> list[Job]:
    with runtime.sessions() as db:
        return list(db.scalars(select(Job).where(Job.kind == "grades.sync").order_by(Job.id)))


def _request(runtime: Runtime, context_id: int, trigger: str = "launch") -> int | None:
    with runtime.sessions() as db:
        job_id = request_sync(db, db.get(Context, context_id), trigger)
        db.commit()
    return job_id


@pytest.fixture
def web(fast_runtime: Runtime):
    return create_app(runtime=fast_runtime).test_client()


def test_sync_now_stores_one_job_and_the_page_shows_it_waiting_then_the_result(
        fast_runtime: Runtime, moodle_lms: FakeLms, web) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    headers = _session(fast_runtime, context_id, "instructor")
    page = web.get("/instructor/sync/", headers=headers)
    assert page.status_code == 200 and b"has not been synced yet" in page.data
    json_headers = {**headers, "Accept": "application/json"}
    started = web.post("/instructor/sync/run", headers=json_headers)
    assert started.status_code == 202 and started.get_json()["started"] is True
    assert started.get_json()["running"] is True and started.get_json()["waiting"] is True
    again = web.post("/instructor/sync/run", headers=json_headers)  # a double click
    assert again.get_json()["started"] is False and again.get_json()["waiting"] is True
    [job] = _sync_jobs(fast_runtime)
    assert (job.status, job.payload["trigger"]) == ("waiting", "manual")
    page = web.get("/instructor/sync/", headers=headers).data.decode()
    assert "A sync is waiting to start" in page and 'id="sync-button" disabled' in page
    assert moodle_lms.log == []  # nothing ran in the web request
    done = _run_and_status(fast_runtime, web, headers)
    assert [j.status for j in _sync_jobs(fast_runtime)] == ["done"]
    assert done["last"]["status"] == "succeeded" and done["last"]["trigger"] == "manual"
    assert done["last"]["members"] == 4 and done["last"]["rows_written"] > 0
    page = web.get("/instructor/sync/", headers=headers).data.decode()
    assert "succeeded" in page and "Sync now" in page and "What went wrong" not in page


def test_form_post_without_scripts_redirects_back(fast_runtime, moodle_lms, web) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    headers = _session(fast_runtime, context_id, "instructor")
    reply = web.post("/instructor/sync/run", headers=headers)
    assert reply.status_code == 303 and reply.headers["Location"].startswith("/instructor/sync/")
    assert _run_and_status(fast_runtime, web, headers)["last"]["status"] == "succeeded"
    # the job ended: the next click stores the next one
    assert web.post("/instructor/sync/run", headers=headers).status_code == 303
    assert [j.status for j in _sync_jobs(fast_runtime)] == ["done", "waiting"]


def test_a_failed_sync_is_explained_on_the_page(fast_runtime, moodle_lms, web) -> None:
    moodle_lms.ws_functions = set()
    context_id = make_context(fast_runtime, moodle_lms)
    headers = _session(fast_runtime, context_id, "instructor")
    sync_context(fast_runtime, context_id)
    page = web.get("/instructor/sync/", headers=headers).data.decode()
    assert "Not read this time" in page and "gradereport_user_get_grade_items" in page
    assert "Access control exception" not in page  # Moodle's own text is only logged


def test_learners_and_strangers_are_refused(fast_runtime, moodle_lms, web) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    learner = _session(fast_runtime, context_id, "learner")
    assert web.get("/instructor/sync/", headers=learner).status_code == 403
    assert web.post("/instructor/sync/run", headers=learner).status_code == 403
    assert web.get("/instructor/sync/status.json").status_code == 401
    instructor = _session(fast_runtime, context_id, "instructor")
    forged = {SESSION_HEADER: instructor[SESSION_HEADER], "X-CSRF-Token": "x"}
    assert web.post("/instructor/sync/run", headers=forged).status_code == 403
    assert moodle_lms.log == []


def test_cli_sync_with_progress_and_errors(fast_runtime, moodle_lms) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    runner = CliRunner()
    ok = runner.invoke(main, ["sync", "--context", str(context_id)],
                       obj={"runtime": fast_runtime})
    assert ok.exit_code == 0, ok.output
    assert "4 members" in ok.output and "changes saved" in ok.output
    by_lms_id = runner.invoke(main, ["sync", "--context", "2"], obj={"runtime": fast_runtime})
    assert by_lms_id.exit_code == 0 and "0 changes saved" in by_lms_id.output
    missing = runner.invoke(main, ["sync", "--context", "nope"], obj={"runtime": fast_runtime})
    assert missing.exit_code == 1 and "No course context 'nope'" in missing.stderr
    moodle_lms.fail("/webservice/rest/server.php", status=503, times=100)
    failed = runner.invoke(main, ["sync", "--context", str(context_id)],
                           obj={"runtime": fast_runtime})
    # The web service is skipped with a warning; the rest of the sync is saved.
    assert failed.exit_code == 0, failed.output
    assert "warning: Moodle web services could not be read" in failed.stderr
    assert "kept failing" in failed.stderr
    moodle_lms.fail("/memberships", status=500, times=100)  # no roster: the sync fails
    refused = runner.invoke(main, ["sync", "--context", str(context_id)],
                            obj={"runtime": fast_runtime})
    assert refused.exit_code == 1 and "sync failed" in refused.stderr


def _offering(runtime: Runtime, context_id: int, **kwargs) -> None:
    with runtime.sessions() as db:
        platform_id = db.get(Context, context_id).platform_id
        mc = MicroCredential(platform_id=platform_id, institution_id=db.get(Platform,
                             platform_id).institution_id, code=f"MC{context_id}")
        db.add(mc)
        db.flush()
        version = MicroCredentialVersion(
            # The mandatory EU micro-credential (Annex I) elements a credential states.
            participation_form="online", quality_assurance="Annual review by the Office",
            assessment_methods=["Project"],
            platform_id=platform_id, institution_id=mc.institution_id,
        micro_credential_id=mc.id, version=1, title="Data",
            kind="course", tqf_level=6, eqf_level=6, workload_hours=Decimal(25))
        db.add(version)
        db.flush()
        db.add(Offering(platform_id=platform_id, context_id=context_id,
                        mc_version_id=version.id, **kwargs))
        db.commit()


def test_scheduled_job_syncs_open_offerings_once_per_interval(fast_runtime, moodle_lms) -> None:
    open_ctx = make_context(fast_runtime, moodle_lms, rest=False)
    _offering(fast_runtime, open_ctx)
    assert jobs.scheduled_sync(fast_runtime) == {"succeeded": 1, "failed": 0, "skipped": 0}
    assert jobs.scheduled_sync(fast_runtime) == {"succeeded": 0, "failed": 0, "skipped": 0}
    with fast_runtime.sessions() as db:
        assert [r.trigger for r in db.scalars(select(SyncRun))] == ["schedule"]
        later = utcnow() + timedelta(minutes=fast_runtime.settings.sync_interval_minutes + 1)
        assert jobs.due_contexts(db, timedelta(minutes=60), later) == [open_ctx]
        finalized = db.scalar(select(Offering))
        finalized.finalized_at = utcnow()
        db.commit()
        assert jobs.due_contexts(db, timedelta(minutes=60), later) == []


def test_the_job_registry_runs_the_scheduled_sync_every_minute() -> None:
    from lti_tool.jobs.registry import registry

    jobs_registry = registry()
    [spec] = [p for p in jobs_registry.periodic if p.kind == jobs.JOB_ID]
    assert spec.cron == "* * * * *"  # due_contexts spreads courses over the interval
    assert jobs_registry.kinds[jobs.JOB_ID].function.__name__ == "scheduled_sync_job"


def test_a_requested_sync_runs_as_a_job(fast_runtime, moodle_lms) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    assert _request(fast_runtime, context_id) is not None
    assert run_jobs(fast_runtime) == 1
    with fast_runtime.sessions() as db:
        [run] = db.scalars(select(SyncRun)).all()
    assert (run.status, run.trigger) == ("succeeded", "launch")


def test_a_sync_request_that_finds_one_running_does_not_look_running_forever(
        fast_runtime, moodle_lms, web) -> None:
    from lti_tool.grades.sync import acquire_lease, progress_of, release_lease

    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    headers = _session(fast_runtime, context_id, "instructor")
    owner = acquire_lease(fast_runtime.sessions, context_id)
    assert _request(fast_runtime, context_id) is None  # a running sync is enough
    assert web.get("/instructor/sync/status.json", headers=headers).get_json()["running"]
    release_lease(fast_runtime.sessions, context_id, owner)
    assert _request(fast_runtime, context_id) is not None
    run_jobs(fast_runtime)
    with fast_runtime.sessions() as db:
        assert progress_of(db, context_id)["state"] == "succeeded"
    assert not web.get("/instructor/sync/status.json", headers=headers).get_json()["running"]


def test_a_job_that_loses_the_race_for_the_lease_does_not_look_waiting_or_running(
        fast_runtime, moodle_lms, web, monkeypatch) -> None:
    from lti_tool.grades import sync as sync_module
    from lti_tool.grades.sync import queue

    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    headers = _session(fast_runtime, context_id, "instructor")
    owner = sync_module.acquire_lease(fast_runtime.sessions, context_id)
    monkeypatch.setattr(queue, "lease_holder", lambda db, cid: None)  # the race
    assert _request(fast_runtime, context_id) is not None
    run_jobs(fast_runtime)
    [job] = _sync_jobs(fast_runtime)
    assert (job.status, job.result["status"]) == ("done", "skipped")
    with fast_runtime.sessions() as db:
        assert sync_module.progress_of(db, context_id)["state"] is None
    sync_module.release_lease(fast_runtime.sessions, context_id, owner)
    body = web.get("/instructor/sync/status.json", headers=headers).get_json()
    assert not body["running"] and not body["waiting"]


def test_sync_now_reports_progress_while_it_runs(fast_runtime, moodle_lms, web) -> None:
    """The page's poll sees the phase and `done of total` items, then the finished run.

    The fake LMS holds the roster and the second item's results until the test has seen the
    status they stand for: the test waits on states, never on timing.
    """
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    headers = _session(fast_runtime, context_id, "instructor")
    roster = moodle_lms.hold("/memberships")
    results = moodle_lms.hold("/lineitems/6/lineitem/results")

    def status() -> dict:
        return web.get("/instructor/sync/status.json", headers=headers).get_json()

    web.post("/instructor/sync/run", headers={**headers, "Accept": "application/json"})
    waiting = status()
    thread = run_jobs_in_background(fast_runtime)  # a worker takes the job
    assert roster.reached.wait(30)
    during_roster = status()
    roster.release()
    assert results.reached.wait(30)
    during_ags = status()
    results.release()
    thread.join(30)
    assert not thread.is_alive()
    after = status()
    assert waiting["waiting"] and waiting["running"] and waiting["progress"] is None
    assert not during_roster["waiting"]
    assert during_roster["running"] and during_roster["progress"]["phase"] == (
        "starting" if fast_runtime.engine.dialect.name == "sqlite" else "roster")
    assert during_roster["last"]["status"] == "running"
    if fast_runtime.engine.dialect.name == "sqlite":
        # SQLite has one writer: the running sync's transaction must not meet another
        # writer, so the page shows it running without counts (lti_tool.grades.sync.progress)
        assert during_ags["running"] and during_ags["progress"] == {
            "phase": "starting", "done": 0, "total": 0}
    else:  # PostgreSQL: the counts of another transaction, seen by any node
        assert during_ags["running"] and during_ags["progress"] == {
            "phase": "ags", "done": 1, "total": 4}
    assert not after["running"] and after["progress"] is None
    assert after["last"]["status"] == "succeeded"


def test_the_status_never_says_finished_while_its_run_is_running(
        fast_runtime, moodle_lms, web, monkeypatch) -> None:
    """Issue 21: `running` and the last run's state come from one consistent answer, even when
    the sync finishes between the page's reads (the progress already cleared, the lease gone,
    the run row still `running` in what the page read)."""
    from lti_tool.grades.sync import progress
    from lti_tool.grades.sync.lease import LEASE

    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    headers = _session(fast_runtime, context_id, "instructor")
    with fast_runtime.sessions() as db:
        run = SyncRun(context_id=context_id, trigger="manual", status="running",
                      started_at=utcnow())
        db.add(run)
        db.commit()
    # The progress row says the sync is over and no lease is held: the run's row decides.
    progress.set_progress(fast_runtime.sessions, context_id, state="succeeded", phase="done")
    body = web.get("/instructor/sync/status.json", headers=headers).get_json()
    assert body["last"]["status"] == "running" and body["running"] is True
    # A run abandoned by a killed worker (no lease, older than a lease) is not running forever.
    with fast_runtime.sessions() as db:
        db.get(SyncRun, run.id).started_at = utcnow() - LEASE - timedelta(seconds=1)
        db.commit()
    body = web.get("/instructor/sync/status.json", headers=headers).get_json()
    assert body["last"]["status"] == "running" and body["running"] is False


def test_the_schedule_follows_the_configured_interval(fast_runtime, moodle_lms) -> None:
    """`sync_interval_minutes` decides which courses are due (the job ticks every minute)."""
    settings = dataclasses.replace(fast_runtime.settings, sync_interval_minutes=15)
    runtime = Runtime(settings=settings, engine=fast_runtime.engine,
                      sessions=fast_runtime.sessions)
    recent = make_context(runtime, moodle_lms, rest=False)
    with runtime.sessions() as db:
        first = db.get(Context, recent)
        twin = Context(platform_id=first.platform_id, context_id="other", label="LTI102",
                       ags_lineitems_url=first.ags_lineitems_url, ags_scopes=first.ags_scopes,
                       nrps_url=first.nrps_url, nrps_versions=first.nrps_versions)
        db.add(twin)
        db.commit()
        stale = twin.id
    for context_id, minutes in ((recent, 14), (stale, 16)):
        _offering(runtime, context_id)
        with runtime.sessions() as db:
            started = utcnow() - timedelta(minutes=minutes)
            db.add(SyncRun(context_id=context_id, trigger="schedule", status="succeeded",
                           started_at=started, finished_at=started))
            db.commit()
    assert jobs.scheduled_sync(runtime) == {"succeeded": 1, "failed": 0, "skipped": 0}
    with runtime.sessions() as db:
        latest = db.scalar(select(SyncRun).order_by(SyncRun.id.desc()).limit(1))
        assert (latest.context_id, latest.trigger) == (stale, "schedule")


def test_cli_sync_draws_a_progress_bar_on_a_terminal(fast_runtime, moodle_lms) -> None:
    """`lti-tool sync --context ID` in a real terminal (a pty) shows the bar filling up."""
    context_id = make_context(fast_runtime, moodle_lms)  # AGS and Moodle web services
    leader, follower = pty.openpty()
    env = {**os.environ, "LTI_TOOL_DATABASE_URL": fast_runtime.settings.database_url,
           "LTI_TOOL_DATA_DIR": str(fast_runtime.settings.data_dir), "COLUMNS": "100",
           "LTI_TOOL_OUTBOUND_ALLOW": fast_runtime.settings.outbound_allow}
    process = subprocess.Popen(
        [sys.executable, "-c", "from lti_tool.cli import main; main()", "sync", "--context",
         str(context_id)],
        stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(30) == 0, output.decode(errors="replace")
    text = output.decode(errors="replace")
    percents = [int(p) for p in re.findall(r"(\d+)%", text)]
    assert "Syncing LTI101" in text and len(percents) > 2, text
    assert percents == sorted(percents) and percents[-1] == 100  # forward only, over 2 sources
    assert "8 items, 13 marks, 4 members" in text


def _node(runtime: Runtime) -> tuple[Runtime, object]:
    """Another web node on the same database: its own engine, sessions and app."""
    from lti_tool.store.db import make_engine, make_session_factory

    engine = make_engine(runtime.settings.database_url)
    other = Runtime(settings=runtime.settings, engine=engine,
                    sessions=make_session_factory(engine))
    return other, create_app(runtime=other).test_client()


def test_another_node_shows_the_sync_waiting_running_and_ended(fast_runtime, moodle_lms,
                                                               web) -> None:
    """Node A stores the sync, a worker runs it, node B's page shows its state throughout:
    nothing of it lives in one process."""
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    headers = _session(fast_runtime, context_id, "instructor")
    other, node_b = _node(fast_runtime)
    try:
        def status() -> dict:
            return node_b.get("/instructor/sync/status.json", headers=headers).get_json()

        roster = moodle_lms.hold("/memberships")
        web.post("/instructor/sync/run", headers={**headers, "Accept": "application/json"})
        waiting = status()
        worker = run_jobs_in_background(other)  # the worker: yet another engine
        assert roster.reached.wait(30)
        running = status()
        roster.release()
        worker.join(30)
        assert not worker.is_alive()
        ended = status()
        page = node_b.get("/instructor/", headers=headers).get_data(as_text=True)
    finally:
        other.engine.dispose()
    assert waiting["waiting"] and waiting["running"]
    assert running["running"] and not running["waiting"]
    assert running["progress"]["phase"] == (
        "starting" if fast_runtime.engine.dialect.name == "sqlite" else "roster")
    assert not ended["running"] and ended["last"]["status"] == "succeeded"
    assert "waiting to start" not in page and "being synced" not in page
    with fast_runtime.sessions() as db:
        row = db.get(SyncProgress, context_id)
        assert (row.state, row.generation) == ("succeeded", 1)


def test_the_overview_says_a_requested_sync_waits(fast_runtime, moodle_lms, web) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    headers = _session(fast_runtime, context_id, "instructor")
    assert _request(fast_runtime, context_id, "manual") is not None
    page = web.get("/instructor/", headers=headers).get_data(as_text=True)
    assert "A sync of the gradebook is waiting to start" in page and "data-status-url" in page


@pytest.mark.postgres
def test_requests_at_the_same_moment_on_two_nodes_store_one_sync(fast_runtime,
                                                                  moodle_lms) -> None:
    """Eight requests at once, each on its own connection (as many nodes would): the
    idempotency key they share makes the outbox store one job, and it runs once."""
    import threading

    if fast_runtime.engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL (SQLite has one writer)")
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    barrier = threading.Barrier(8)
    stored: list[int | None] = []

    def request() -> None:
        with fast_runtime.sessions() as db:
            context = db.get(Context, context_id)
            barrier.wait(30)
            stored.append(request_sync(db, context, "manual"))
            db.commit()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(stored) == 8 and len([s for s in stored if s is not None]) == 1
    assert run_jobs(fast_runtime) == 1
    with fast_runtime.sessions() as db:
        assert len(db.scalars(select(SyncRun)).all()) == 1
