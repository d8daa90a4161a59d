"""An instructor's launch starts a background gradebook sync against the LMS, without waiting
for it; a learner's launch starts none. The LMS is the fake Moodle of testkit/fakelms."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from sqlalchemy import select

from lti_tool.grades.sync import progress_of
from lti_tool.runtime import Runtime
from lti_tool.store.models.core import Context, Platform
from lti_tool.store.models.grades import SyncRun
from lti_tool.web import create_app
from testkit.lti import fixture_claims, login_and_launch, platform_key, register_platform
from tests.fakelms.pytest_fixtures import fast_runtime, moodle_lms  # noqa: F401

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
    lms.hold("lineitems")  # the sync waits there until the test releases it
    return login_and_launch(client, platform, KEY, claims)


def _release(lms) -> None:
    for fault in lms.faults:
        fault.release()


def _sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sync-")]


def test_instructor_launch_starts_a_sync_and_does_not_wait_for_it(syncing, moodle_lms):  # noqa: F811
    response = _launch(syncing, moodle_lms, "moodle/id_token_instructor_resource_link.json")
    assert response.status_code == 303 and response.headers["Location"].startswith(
        "/instructor/")
    with syncing.sessions() as db:
        context_id = db.scalar(select(Context.id))
        # The launch has answered while the LMS still holds the sync's line-items request.
        assert db.scalar(select(SyncRun.status)) in (None, "running")
    assert progress_of(context_id)["state"] == "running"
    [thread] = [t for t in _sync_threads() if t.name == f"sync-{context_id}"]
    _release(moodle_lms)
    thread.join(30)
    assert not thread.is_alive()
    with syncing.sessions() as db:
        [run] = db.scalars(select(SyncRun)).all()
        assert (run.context_id, run.status, run.trigger) == (context_id, "succeeded", "launch")
    assert moodle_lms.count("/lineitems", "GET") >= 1
    assert moodle_lms.count("/memberships", "GET") >= 1


def test_learner_launch_starts_no_sync(syncing, moodle_lms):  # noqa: F811
    before = set(_sync_threads())
    response = _launch(syncing, moodle_lms, "moodle/id_token_student_resource_link.json")
    assert response.status_code == 303 and response.headers["Location"].startswith("/learner/")
    with syncing.sessions() as db:
        context_id = db.scalar(select(Context.id))
        assert db.scalar(select(SyncRun)) is None
    assert progress_of(context_id) is None
    assert set(_sync_threads()) == before
    assert moodle_lms.count() == 0  # the LMS heard nothing from the tool


def test_a_sync_that_cannot_start_does_not_fail_the_launch(syncing, moodle_lms, monkeypatch,  # noqa: F811
                                                          caplog):
    """The launch is committed before the sync starts; a sync that cannot start (no thread
    left, database hiccup) is logged, and the instructor still lands in the tool."""
    from lti_tool.grades import sync

    def cannot_start(*args: object, **kwargs: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(sync, "start_background_sync", cannot_start)
    response = _launch(syncing, moodle_lms, "moodle/id_token_instructor_resource_link.json")
    assert response.status_code == 303 and response.headers["Location"].startswith(
        "/instructor/")
    assert "background sync after the launch could not start" in caplog.text


def test_relaunching_an_unchanged_course_saves_nothing(syncing, moodle_lms):  # noqa: F811
    """Issue 12: every launch-started sync of an unchanged course reported "1 changes saved"
    (the launch and the roster kept rewriting the instructor's roles) while "Sync now" said 0."""
    _launch(syncing, moodle_lms, "moodle/id_token_instructor_resource_link.json")
    _release(moodle_lms)
    with syncing.sessions() as db:
        context_id = db.scalar(select(Context.id))
        platform = db.scalar(select(Platform))
        claims = fixture_claims("moodle/id_token_instructor_resource_link.json", platform)
    claims[AGS]["lineitems"] = moodle_lms.lineitems_url
    claims[AGS]["lineitem"] = moodle_lms.lineitem_url(5)
    claims[NRPS]["context_memberships_url"] = moodle_lms.memberships_url
    client = create_app(runtime=syncing).test_client()
    written = []
    for _ in range(3):
        for thread in [t for t in _sync_threads() if t.name == f"sync-{context_id}"]:
            thread.join(30)
        with syncing.sessions() as db:
            written.append(db.scalars(select(SyncRun.rows_written)
                                      .order_by(SyncRun.id.desc())).first())
        assert login_and_launch(client, platform, KEY, claims).status_code == 303
    for thread in [t for t in _sync_threads() if t.name == f"sync-{context_id}"]:
        thread.join(30)
    with syncing.sessions() as db:
        runs = db.scalars(select(SyncRun).order_by(SyncRun.id)).all()
    assert [r.trigger for r in runs] == ["launch"] * 4
    assert all(r.status == "succeeded" for r in runs)
    assert [r.rows_written for r in runs[1:]] == [0, 0, 0]
