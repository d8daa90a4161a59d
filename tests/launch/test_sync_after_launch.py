"""An instructor's launch stores a gradebook sync job (in the launch's own transaction) that a
worker runs against the LMS, without the launch waiting for it; a learner's launch stores none.
The LMS is the fake Moodle of testkit/fakelms; the jobs run through the in-process runner."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from lti_tool.grades.sync import progress_of
from lti_tool.runtime import Runtime
from lti_tool.store.models.core import Context, Platform
from lti_tool.store.models.grades import SyncRun
from lti_tool.store.models.jobs import Job
from lti_tool.web import create_app
from testkit.lti import fixture_claims, login_and_launch, platform_key, register_platform
from tests.fakelms.pytest_fixtures import fast_runtime, moodle_lms  # noqa: F401
from tests.sync_jobs import run_jobs

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
KEY = platform_key("platform")


@pytest.fixture
def syncing(fast_runtime: Runtime) -> Runtime:  # noqa: F811
    """The test runtime with `sync_after_launch` on (the shared settings fixture turns it off)."""
    settings = dataclasses.replace(fast_runtime.settings, sync_after_launch=True)
    return Runtime(settings=settings, engine=fast_runtime.engine,
                   sessions=fast_runtime.sessions)


def _launch(syncing: Runtime, lms, fixture: str):
    """A Moodle-shaped launch whose AGS and NRPS endpoints are the fake LMS's."""
    with syncing.sessions() as db:
        platform = register_platform(db, issuer=lms.base_url, client_id=lms.client_id, key=KEY,
                                     lms_kind="moodle",
                                     auth_login_url=lms.base_url + "/mod/lti/auth.php")
        platform.auth_token_url = lms.token_url
        db.commit()
        claims = fixture_claims(fixture, platform)
    claims[AGS]["lineitems"] = lms.lineitems_url
    claims[AGS]["lineitem"] = lms.lineitem_url(5)
    claims[NRPS]["context_memberships_url"] = lms.memberships_url
    client = create_app(runtime=syncing).test_client()
    return login_and_launch(client, platform, KEY, claims)


def _sync_jobs(runtime: Runtime) -> list[Job]:
    with runtime.sessions() as db:
        return list(db.scalars(select(Job).where(Job.kind == "grades.sync").order_by(Job.id)))


def test_instructor_launch_stores_a_sync_and_does_not_wait_for_it(syncing, moodle_lms):  # noqa: F811
    response = _launch(syncing, moodle_lms, "moodle/id_token_instructor_resource_link.json")
    assert response.status_code == 303 and response.headers["Location"].startswith(
        "/instructor/")
    assert moodle_lms.count() == 0  # the launch answered before any call to the LMS
    [job] = _sync_jobs(syncing)
    with syncing.sessions() as db:
        context = db.scalar(select(Context))
        assert db.scalar(select(SyncRun)) is None
        assert progress_of(db, context.id)["state"] == "waiting"
    assert (job.status, job.payload) == ("waiting", {"context_id": context.id,
                                                     "trigger": "launch"})
    assert job.platform_id == context.platform_id and job.request_id  # the launch's request id
    assert run_jobs(syncing) == 1
    with syncing.sessions() as db:
        [run] = db.scalars(select(SyncRun)).all()
        assert (run.context_id, run.status, run.trigger) == (context.id, "succeeded", "launch")
        assert progress_of(db, context.id)["state"] == "succeeded"
    assert [j.status for j in _sync_jobs(syncing)] == ["done"]
    assert moodle_lms.count("/lineitems", "GET") >= 1
    assert moodle_lms.count("/memberships", "GET") >= 1


def test_learner_launch_starts_no_sync(syncing, moodle_lms):  # noqa: F811
    response = _launch(syncing, moodle_lms, "moodle/id_token_student_resource_link.json")
    assert response.status_code == 303 and response.headers["Location"].startswith("/learner/")
    with syncing.sessions() as db:
        context_id = db.scalar(select(Context.id))
        assert db.scalar(select(SyncRun)) is None
        assert progress_of(db, context_id) is None
    assert _sync_jobs(syncing) == []
    assert moodle_lms.count() == 0  # the LMS heard nothing from the tool


def test_a_sync_that_cannot_be_stored_does_not_fail_the_launch(syncing, moodle_lms,  # noqa: F811
                                                              monkeypatch, caplog):
    """A sync that cannot be stored (a database hiccup in its savepoint) is logged, the launch
    is committed, and the instructor still lands in the tool."""
    from lti_tool.grades import sync

    def cannot_store(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the outbox is unavailable")

    monkeypatch.setattr(sync, "request_sync", cannot_store)
    response = _launch(syncing, moodle_lms, "moodle/id_token_instructor_resource_link.json")
    assert response.status_code == 303 and response.headers["Location"].startswith(
        "/instructor/")
    assert "the sync after the launch could not be stored" in caplog.text
    assert _sync_jobs(syncing) == []
    with syncing.sessions() as db:
        assert db.scalar(select(Context.id)) is not None  # the launch itself was kept


def test_relaunching_an_unchanged_course_saves_nothing(syncing, moodle_lms):  # noqa: F811
    """Issue 12: every launch-started sync of an unchanged course reported "1 changes saved"
    (the launch and the roster kept rewriting the instructor's roles) while "Sync now" said 0."""
    _launch(syncing, moodle_lms, "moodle/id_token_instructor_resource_link.json")
    run_jobs(syncing)
    with syncing.sessions() as db:
        platform = db.scalar(select(Platform))
        claims = fixture_claims("moodle/id_token_instructor_resource_link.json", platform)
    claims[AGS]["lineitems"] = moodle_lms.lineitems_url
    claims[AGS]["lineitem"] = moodle_lms.lineitem_url(5)
    claims[NRPS]["context_memberships_url"] = moodle_lms.memberships_url
    client = create_app(runtime=syncing).test_client()
    for _ in range(3):
        assert login_and_launch(client, platform, KEY, claims).status_code == 303
        assert login_and_launch(client, platform, KEY, claims).status_code == 303  # waits: 1
        assert run_jobs(syncing) == 1
    with syncing.sessions() as db:
        runs = db.scalars(select(SyncRun).order_by(SyncRun.id)).all()
    assert [r.trigger for r in runs] == ["launch"] * 4
    assert all(r.status == "succeeded" for r in runs)
    assert [r.rows_written for r in runs[1:]] == [0, 0, 0]
    assert [j.status for j in _sync_jobs(syncing)] == ["done"] * 4
