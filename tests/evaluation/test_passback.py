"""Grade passback end to end: decisions -> the real AGS client -> the fake LMS (Moodle, Canvas).

The fake LMS checks what a real one checks (token scopes, media types, score fields) and
answers in the captured shapes, so these tests show that the LMS gradebook gets the column
"Micro-credential: <title>" once per offering and the share of required outcomes attained.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.grades import evaluation as ev
from lti_tool.grades.passback import send_passbacks
from lti_tool.runtime import Runtime
from lti_tool.store.models.core import Context, Platform
from lti_tool.store.models.evaluation import Decision, GradePassback, OfferingLineItem
from testkit.fakelms import FakeLms
from tests.evaluation.conftest import Course, seed_course
from tests.fakelms.pytest_fixtures import *  # noqa: F403
from tests.fakelms.pytest_fixtures import make_context

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
MOODLE_LEARNERS = ["4", "5", "6"]  # student1..3 in the captured course
CANVAS_LEARNERS = ["c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60"]


def _course(runtime: Runtime, fake: FakeLms, subs: list[str],
            scopes: list[str] | None = None, passback: bool = True) -> Iterator[Course]:
    context_id = make_context(runtime, fake, rest=False, scopes=scopes)
    db = runtime.sessions()
    course = seed_course(db, context=db.get(Context, context_id), subs=subs, passback=passback)
    ev.save_mapping(db, runtime.settings, course.offering.id, course.mapping(), course.by)
    db.commit()
    yield course
    db.rollback()
    db.close()


@pytest.fixture
def moodle_course(fast_runtime: Runtime, moodle_lms: FakeLms) -> Iterator[Course]:
    yield from _course(fast_runtime, moodle_lms, MOODLE_LEARNERS)


def _pass(course: Course, settings, n: int) -> None:
    learner = course.learners[n]
    course.mark(learner, "quiz1", "7")
    course.mark(learner, "quiz2", "14")
    course.mark(learner, "project", "90")
    ev.set_tool_rubric_score(course.db, settings, course.offering.id, learner.id, "LO3",
                             "proficient", course.by)


def _by_user(fake: FakeLms) -> dict[str, dict]:
    """The latest score the LMS received per user."""
    return {body["userId"]: body for body in fake.posted_scores}


def _statuses(db: Session) -> list[tuple[str, Decimal]]:
    return [(d.status, d.share_attained) for d in db.scalars(select(Decision).order_by(
        Decision.person_id))]


def test_moodle_gets_one_column_and_the_share_attained(fast_runtime: Runtime, moodle_lms: FakeLms,
                                                       moodle_course: Course) -> None:
    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    _pass(course, settings, 0)
    course.mark(course.learners[1], "project", "90")  # LO2 only: 1 of 3 required LOs
    ev.evaluate_changed(db, settings, course.context.id)
    assert send_passbacks(db, settings)["sent"] == 3
    db.commit()

    created = moodle_lms.created_line_items
    assert [(c["label"], c["scoreMaximum"]) for c in created] == [
        ("Micro-credential: Data Literacy", 100)]
    assert created[0]["id"] == moodle_lms.lineitem_url(10)  # next grade item id after 2..9
    assert db.scalar(select(OfferingLineItem.lineitem_url)) == moodle_lms.lineitem_url(10)
    scores = _by_user(moodle_lms)
    assert {u: (s["scoreGiven"], s["scoreMaximum"], s["activityProgress"], s["gradingProgress"])
            for u, s in scores.items()} == {
        "4": (100.0, 100.0, "Completed", "FullyGraded"),
        "5": (33.3333, 100.0, "InProgress", "Pending"),
        "6": (0.0, 100.0, "InProgress", "Pending")}
    assert moodle_lms.count("/lineitems/10/lineitem/scores?type_id=1", "POST") == 3
    # The LMS stored them: its results service shows the column's marks.
    assert moodle_lms.course.results[10]["4"].score == 100.0

    # Learner 2 attains LO1 as well: only that score is sent, into the same column.
    course.mark(course.learners[1], "quiz1", "10")
    course.mark(course.learners[1], "quiz2", "20")
    ev.evaluate_changed(db, settings, course.context.id, {course.learners[1].id})
    assert send_passbacks(db, settings)["sent"] == 1
    assert moodle_lms.count("/lineitems?type_id=1", "POST") == 1  # no second column
    assert moodle_lms.posted_scores[-1]["userId"] == "5"
    assert moodle_lms.posted_scores[-1]["scoreGiven"] == 66.6667
    assert send_passbacks(db, settings)["sent"] == 0  # nothing new: nothing sent

    # The window closes: the learners not passed are failed, graded as complete.
    ev.finalize(db, settings, course.offering.id, course.by)
    assert send_passbacks(db, settings)["sent"] == 2
    assert {u: (s["activityProgress"], s["gradingProgress"])
            for u, s in _by_user(moodle_lms).items()} == {
        "4": ("Completed", "FullyGraded"), "5": ("Completed", "FullyGraded"),
        "6": ("Completed", "FullyGraded")}


@pytest.mark.parametrize("status", [429, 500])
def test_an_lms_outage_is_retried_later_and_never_undoes_a_decision(
        fast_runtime: Runtime, moodle_lms: FakeLms, moodle_course: Course, status: int) -> None:
    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    _pass(course, settings, 0)
    ev.evaluate_changed(db, settings, course.context.id)
    db.commit()
    before = _statuses(db)
    moodle_lms.fail("/scores", status=status, retry_after="0", times=1000)
    counts = send_passbacks(db, settings)
    assert counts == {"sent": 0, "failed": 1, "skipped": 0, "deferred": 2}
    db.commit()
    assert _statuses(db) == before  # the pass stands
    rows = db.scalars(select(GradePassback).order_by(GradePassback.id)).all()
    assert [(r.status, r.tries) for r in rows] == [("failed", 1), ("pending", 0), ("pending", 0)]
    assert f"HTTP {status}" in rows[0].last_error and "try again later" in rows[0].last_error
    # The first score was tried as often as the retry policy allows (3 attempts); the course's
    # other scores wait for the next run instead of hammering a busy LMS.
    assert moodle_lms.count("/scores", "POST") == 3

    moodle_lms.faults.clear()
    assert send_passbacks(db, settings)["sent"] == 3
    db.commit()
    # The column created on the first run was kept although its scores failed then.
    assert moodle_lms.count("/lineitems?type_id=1", "POST") == 1
    assert len(moodle_lms.created_line_items) == 1
    assert _by_user(moodle_lms)["4"]["scoreGiven"] == 100.0
    assert _statuses(db) == before


def test_a_short_429_is_waited_out_in_the_same_run(fast_runtime: Runtime, moodle_lms: FakeLms,
                                                   moodle_course: Course) -> None:
    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    ev.evaluate_changed(db, settings, course.context.id)
    moodle_lms.fail("/scores", status=429, retry_after="0", times=1)
    assert send_passbacks(db, settings)["sent"] == 3


def test_a_failed_column_creation_is_retried_and_made_once(
        fast_runtime: Runtime, moodle_lms: FakeLms, moodle_course: Course) -> None:
    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    ev.evaluate_changed(db, settings, course.context.id)
    moodle_lms.fail("/lineitems?type_id=1", status=500, times=1000, method="POST")
    assert send_passbacks(db, settings) == {"sent": 0, "failed": 1, "skipped": 0,
                                               "deferred": 2}
    assert moodle_lms.count("/lineitems?type_id=1", "POST") == 1  # a POST is not repeated
    assert db.scalar(select(OfferingLineItem)) is None and moodle_lms.posted_scores == []
    moodle_lms.faults.clear()
    assert send_passbacks(db, settings)["sent"] == 3
    assert len(moodle_lms.created_line_items) == 1


def test_a_column_made_by_a_run_that_never_committed_is_found_not_made_again(
        fast_runtime: Runtime, moodle_lms: FakeLms, moodle_course: Course) -> None:
    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    ev.evaluate_changed(db, settings, course.context.id)
    assert send_passbacks(db, settings)["sent"] == 3
    db.rollback()  # the worker died before its commit: the tool forgot the column it made
    ev.evaluate_changed(db, settings, course.context.id)
    assert send_passbacks(db, settings)["sent"] == 3
    assert len(moodle_lms.created_line_items) == 1
    assert db.scalar(select(OfferingLineItem.lineitem_url)) == moodle_lms.lineitem_url(10)


def test_a_refusal_names_the_missing_scope(fast_runtime: Runtime, moodle_lms: FakeLms,
                                           moodle_course: Course) -> None:
    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    _pass(course, settings, 0)
    moodle_lms.fail("/scores", status=403, times=1000)
    assert send_passbacks(db, settings) == {"sent": 0, "failed": 1, "skipped": 0,
                                               "deferred": 2}
    rows = db.scalars(select(GradePassback).order_by(GradePassback.id)).all()
    assert rows[0].status == "failed" and SCORE_SCOPE in rows[0].last_error
    assert "refused access" in rows[0].last_error
    assert [r.status for r in rows[1:]] == ["pending", "pending"]  # the same answer awaits them
    assert "passed" in {status for status, _ in _statuses(db)}
    assert moodle_lms.count("/scores", "POST") == 1  # a refusal is neither retried nor repeated


@pytest.mark.parametrize(("granted", "missing"), [
    ([LINEITEM_SCOPE], "score"), ([SCORE_SCOPE], "lineitem")])
def test_scopes_the_launch_did_not_grant_are_named_without_asking_the_lms(
        fast_runtime: Runtime, moodle_lms: FakeLms, granted: list[str], missing: str) -> None:
    course = next(_course(fast_runtime, moodle_lms, MOODLE_LEARNERS, scopes=granted))
    db, settings = course.db, fast_runtime.settings
    ev.evaluate_changed(db, settings, course.context.id)
    assert send_passbacks(db, settings)["failed"] == 1
    [error] = [r.last_error for r in db.scalars(select(GradePassback)) if r.last_error]
    assert f"({missing})" in error
    assert moodle_lms.posted_scores == []
    assert len(moodle_lms.created_line_items) == (missing == "score")
    db.close()


def test_the_token_endpoint_refusing_the_scope_is_named(fast_runtime: Runtime,
                                                        moodle_lms: FakeLms,
                                                        moodle_course: Course) -> None:
    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    moodle_lms.allowed_scopes = moodle_lms.allowed_scopes - {SCORE_SCOPE}
    db.add(OfferingLineItem(offering_id=course.offering.id,
                            lineitem_url=moodle_lms.lineitem_url(5)))
    ev.evaluate_changed(db, settings, course.context.id)
    assert send_passbacks(db, settings)["failed"] == 1
    assert SCORE_SCOPE in db.scalar(select(GradePassback.last_error).where(
        GradePassback.status == "failed"))


def test_canvas_answers_scores_with_json(fast_runtime: Runtime, canvas_lms: FakeLms) -> None:
    course = next(_course(fast_runtime, canvas_lms, CANVAS_LEARNERS))
    db, settings = course.db, fast_runtime.settings
    _pass(course, settings, 0)
    ev.evaluate_changed(db, settings, course.context.id)
    assert send_passbacks(db, settings)["sent"] == 2
    assert canvas_lms.created_line_items[0]["label"] == "Micro-credential: Data Literacy"
    url = canvas_lms.created_line_items[0]["id"]
    assert url.startswith(canvas_lms.base_url + "/api/lti/courses/311/line_items/")
    assert canvas_lms.count("/line_items/1/scores", "POST") == 2
    assert _by_user(canvas_lms)[CANVAS_LEARNERS[0]]["scoreGiven"] == 100.0
    db.close()


def test_the_instructor_sees_how_passback_went(fast_runtime: Runtime, moodle_lms: FakeLms,
                                               moodle_course: Course) -> None:
    """The course's sync page counts sent / waiting / failed grades and shows the latest
    problem, which names the scope the LMS refused."""
    from lti_tool.web import create_app
    from tests.grades_sync.test_entry_points import _session

    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    ev.evaluate_changed(db, settings, course.context.id)
    db.commit()
    web = create_app(runtime=fast_runtime).test_client()
    headers = _session(fast_runtime, course.context.id, "instructor")
    status = web.get("/instructor/sync/status.json", headers=headers).get_json()
    assert status["passback"] == {"sent": 0, "waiting": 3, "failed": 0, "problem": None,
                                  "waiting_reason": {"code": "queued"}}
    moodle_lms.fail("/scores", status=403, times=1)
    send_passbacks(db, settings)
    db.commit()
    status = web.get("/instructor/sync/status.json", headers=headers).get_json()["passback"]
    assert (status["sent"], status["waiting"], status["failed"]) == (0, 2, 1)
    assert SCORE_SCOPE in status["problem"]
    page = web.get("/instructor/sync/", headers=headers).get_data(as_text=True)
    assert "Grades sent to the LMS" in page and SCORE_SCOPE in page
    # the waiting scores say why they wait (their job is queued for a worker)
    assert 'id="passback-waiting-reason"' in page and "background worker" in page


def test_canvas_column_is_kept_out_of_the_final_grade(fast_runtime: Runtime,
                                                      canvas_lms: FakeLms) -> None:
    """With a Canvas API token the tool marks the assignment Canvas made for its column
    "do not count towards the final grade" (omit_from_final_grade), once."""
    course = next(_course(fast_runtime, canvas_lms, CANVAS_LEARNERS))
    db, settings = course.db, fast_runtime.settings
    platform = db.get(Platform, course.context.platform_id)
    platform.rest_base_url, platform.rest_token = canvas_lms.base_url, canvas_lms.canvas_token
    course.context.ags_lineitems_url = canvas_lms.lineitems_url  # .../courses/311/...
    db.commit()
    _pass(course, settings, 0)
    ev.evaluate_changed(db, settings, course.context.id)
    assert send_passbacks(db, settings)["sent"] == 2
    made = [a for a in canvas_lms.course.canvas_assignments
            if a["name"] == "Micro-credential: Data Literacy"]
    assert len(made) == 1 and made[0]["omit_from_final_grade"] is True
    others = [a for a in canvas_lms.course.canvas_assignments if a is not made[0]]
    assert all(not a.get("omit_from_final_grade") for a in others)
    assert canvas_lms.count("/api/v1/courses/311/assignments/", "PUT") == 1
    db.close()


def test_passback_is_the_instructors_choice(fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    """Off: nothing is queued or sent, no column appears. Switched on in the offering
    settings: the results so far are queued and sent."""
    from lti_tool.web import create_app
    from tests.grades_sync.test_entry_points import _session

    course = next(_course(fast_runtime, moodle_lms, MOODLE_LEARNERS, passback=False))
    settings, db = fast_runtime.settings, course.db
    _pass(course, settings, 0)
    ev.evaluate_changed(db, settings, course.context.id)
    db.commit()
    assert db.scalars(select(GradePassback)).all() == []
    assert send_passbacks(db, settings)["sent"] == 0
    assert moodle_lms.created_line_items == []

    web = create_app(runtime=fast_runtime).test_client()
    headers = _session(fast_runtime, course.context.id, "instructor")
    page = web.get(f"/instructor/offerings/{course.offering.id}", headers=headers)
    text = page.get_data(as_text=True)
    assert 'name="grade_passback"' in text and "new column" in text
    form = {"reevaluation_policy": course.offering.reevaluation_policy,
            "reevaluation_window_days": "14", "grade_passback": "on"}
    saved = web.post(f"/instructor/offerings/{course.offering.id}", data=form, headers=headers)
    assert saved.status_code in (302, 303), saved.get_data(as_text=True)[:500]
    db.expire_all()
    assert course.offering.grade_passback is True
    assert len(db.scalars(select(GradePassback)).all()) == 3
    assert send_passbacks(db, settings)["sent"] == 3
    assert len(moodle_lms.created_line_items) == 1


def test_a_launch_that_brings_ags_sends_the_scores_that_waited_for_it(
        fast_runtime: Runtime, moodle_course: Course) -> None:
    """Scores skipped because the course had no AGS service get a passback job once a launch
    brings the service; nothing is queued while the service is missing or nothing waits."""
    from lti_tool.grades.passback import send_waiting_after_launch
    from lti_tool.store.models.jobs import Job

    course, settings, db = moodle_course, fast_runtime.settings, moodle_course.db
    _pass(course, settings, 0)
    ev.evaluate_changed(db, settings, course.context.id)
    db.commit()

    def launch_jobs() -> list[dict]:
        return [job.payload for job in db.scalars(select(Job).where(
            Job.kind == "grades.passback", Job.key.like("%:launch:%")))]

    send_waiting_after_launch(db, course.context)
    assert launch_jobs() == []  # nothing skipped yet
    lineitems_url = course.context.ags_lineitems_url
    course.context.ags_lineitems_url = None
    assert send_passbacks(db, settings)["skipped"] == 3
    send_waiting_after_launch(db, course.context)
    assert launch_jobs() == []  # still no service to send them to
    course.context.ags_lineitems_url = lineitems_url
    send_waiting_after_launch(db, course.context)
    assert launch_jobs() == [{"context_id": course.context.id}]
