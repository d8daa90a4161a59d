"""Entry points of the sync: the instructor page and "Sync now", the CLI, the scheduled job,
and the background sync after a launch."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import pty
import re
import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from lti_tool.cli import main
from lti_tool.grades import jobs
from lti_tool.grades.sync import start_background_sync, sync_context
from lti_tool.runtime import Runtime
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion, Offering
from lti_tool.store.models.core import Context, Person, Platform, WebSession
from lti_tool.store.models.grades import SyncRun
from lti_tool.web import create_app
from lti_tool.web.auth import SESSION_HEADER, start_session, token_hash
from testkit.fakelms import FakeLms
from tests.fakelms.pytest_fixtures import make_context


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


def _wait_idle(client, headers: dict, timeout: float = 30) -> dict:
    """The status once the background sync threads have ended (joined, not polled)."""
    for thread in [t for t in threading.enumerate() if t.name.startswith("sync-")]:
        thread.join(timeout)
        assert not thread.is_alive(), "the background sync did not finish"
    body = client.get("/instructor/sync/status.json", headers=headers).get_json()
    assert not body["running"]
    return body


@pytest.fixture
def web(fast_runtime: Runtime):
    return create_app(runtime=fast_runtime).test_client()


def test_sync_now_runs_in_the_background_and_the_page_shows_the_result(
        fast_runtime: Runtime, moodle_lms: FakeLms, web) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    headers = _session(fast_runtime, context_id, "instructor")
    page = web.get("/instructor/sync/", headers=headers)
    assert page.status_code == 200 and b"has not been synced yet" in page.data
    roster = moodle_lms.hold("/memberships")  # running until the test has seen it running
    started = web.post("/instructor/sync/run", headers={**headers, "Accept": "application/json"})
    assert started.status_code == 202 and started.get_json()["started"] is True
    assert started.get_json()["running"] is True
    roster.release()
    done = _wait_idle(web, headers)
    assert done["last"]["status"] == "succeeded" and done["last"]["trigger"] == "manual"
    assert done["last"]["members"] == 4 and done["last"]["rows_written"] > 0
    page = web.get("/instructor/sync/", headers=headers).data.decode()
    assert "succeeded" in page and "Sync now" in page and "What went wrong" not in page


def test_form_post_without_scripts_redirects_back(fast_runtime, moodle_lms, web) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    headers = _session(fast_runtime, context_id, "instructor")
    reply = web.post("/instructor/sync/run", headers=headers)
    assert reply.status_code == 303 and reply.headers["Location"].startswith("/instructor/sync/")
    _wait_idle(web, headers)


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


def test_background_sync_after_a_launch(fast_runtime, moodle_lms) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    thread = start_background_sync(fast_runtime, context_id)
    assert thread is not None
    thread.join(15)
    with fast_runtime.sessions() as db:
        [run] = db.scalars(select(SyncRun)).all()
    assert (run.status, run.trigger) == ("succeeded", "launch")


def test_a_background_sync_that_finds_one_running_does_not_look_running_forever(
        fast_runtime, moodle_lms, web) -> None:
    from lti_tool.grades.sync import acquire_lease, progress_of, release_lease

    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    headers = _session(fast_runtime, context_id, "instructor")
    owner = acquire_lease(fast_runtime.sessions, context_id)
    assert start_background_sync(fast_runtime, context_id) is None  # seen as running
    assert web.get("/instructor/sync/status.json", headers=headers).get_json()["running"]
    release_lease(fast_runtime.sessions, context_id, owner)
    thread = start_background_sync(fast_runtime, context_id)
    thread.join(15)
    assert progress_of(context_id)["state"] == "succeeded"
    assert not web.get("/instructor/sync/status.json", headers=headers).get_json()["running"]


def test_losing_the_race_for_the_lease_in_the_thread_resets_the_progress(
        fast_runtime, moodle_lms, monkeypatch) -> None:
    from lti_tool.grades import sync as sync_module
    from lti_tool.grades.sync import runner

    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    owner = sync_module.acquire_lease(fast_runtime.sessions, context_id)
    monkeypatch.setattr(runner, "lease_holder", lambda db, cid: None)  # the race
    thread = sync_module.start_background_sync(fast_runtime, context_id)
    thread.join(15)
    assert sync_module.progress_of(context_id)["state"] == "idle"
    sync_module.release_lease(fast_runtime.sessions, context_id, owner)


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
    [thread] = [t for t in threading.enumerate() if t.name == f"sync-{context_id}"]
    assert roster.reached.wait(30)
    during_roster = status()
    roster.release()
    assert results.reached.wait(30)
    during_ags = status()
    results.release()
    thread.join(30)
    assert not thread.is_alive()
    after = status()
    assert during_roster["running"] and during_roster["progress"]["phase"] == "roster"
    assert during_roster["last"]["status"] == "running"
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
    # The in-memory progress says the sync is over and no lease is held: the run's row decides.
    monkeypatch.setitem(progress._progress, context_id, {"state": "succeeded", "phase": "done"})
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
