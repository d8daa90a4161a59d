"""The sync against the fake Moodle and Canvas, built from the captured replies."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from lti_tool.grades.sync import runner, sync_context
from lti_tool.runtime import Runtime
from lti_tool.store.models.core import Membership, Person
from lti_tool.store.models.grades import (
    GradeItem,
    LmsRubricAssessment,
    LmsRubricCriterion,
    Score,
    SyncRun,
)
from testkit.fakelms import FakeLms
from testkit.fakelms.data import Result, add_moodle_rubric
from tests.fakelms.pytest_fixtures import make_context


def _scores(runtime: Runtime, context_id: int) -> dict[tuple[str, str, str], Decimal | None]:
    """(source, item label, sub) -> score."""
    with runtime.sessions() as db:
        rows = db.execute(
            select(GradeItem.source, GradeItem.label, Person.sub, Score.score)
            .join(Score, Score.grade_item_id == GradeItem.id)
            .join(Person, Person.id == Score.person_id)
            .where(GradeItem.context_id == context_id))
        return {(src, label, sub): score for src, label, sub, score in rows}


@pytest.fixture
def evaluated(monkeypatch) -> list:
    """Stand in for the evaluation and record what the sync hands it."""
    calls: list = []
    monkeypatch.setattr(runner, "evaluate_changed",
                        lambda db, settings, context_id, people: calls.append(
                            (context_id, people)))
    return calls


def test_moodle_course_is_synced_from_ags_nrps_and_web_services(
        fast_runtime: Runtime, moodle_lms: FakeLms, evaluated: list) -> None:
    moodle_lms.ags_page = moodle_lms.nrps_page = 2
    context_id = make_context(fast_runtime, moodle_lms)
    result = sync_context(fast_runtime, context_id, trigger="cli")
    assert result.status == "succeeded", result.error
    scores = _scores(fast_runtime, context_id)
    assert scores[("ags", "Breakout (LTI 1.3)", "4")] == Decimal(87)
    assert scores[("moodle_ws", "Essay 1", "4")] == Decimal(78)
    assert scores[("moodle_ws", "Participation (manual)", "4")] == Decimal(7)
    # "Score" (grade item 7) is AGS line item 7 too: stored once, from AGS (no result yet)
    assert not {key for key in scores if key[1] == "Score"}
    with fast_runtime.sessions() as db:
        items = db.scalars(select(GradeItem).where(GradeItem.context_id == context_id)).all()
        assert sorted((i.source, i.label) for i in items if i.source == "ags")[0] == (
            "ags", "Breakout (LTI 1.3)")
        # 8 grade items, no course total, minus the 4 AGS lists too (line items 5-8)
        assert sorted(i.label for i in items if i.source == "moodle_ws") == [
            "Essay 1", "Participation (manual)", "Quiz-like Assignment 2",
            "Tool-created line item"]
        assert len([i for i in items if i.source == "ags"]) == 4
        essay = next(i for i in items if i.label == "Essay 1")
        assert (essay.maximum, essay.category, essay.lms_activity_id) == (
            Decimal(100), "LTI Test Course 101", "1")
        roles = dict(db.execute(select(Person.sub, Membership.role).join(
            Membership, Membership.person_id == Person.id)).all())
        assert roles == {"3": "instructor", "4": "learner", "5": "learner", "6": "learner"}
        run = db.get(SyncRun, result.run_id)
        assert (run.status, run.trigger, run.members_seen) == ("succeeded", "cli", 4)
        assert run.rows_written == result.rows_written > 0 and run.finished_at is not None
        assert set(run.sources) == {"ags", "moodle_ws", "nrps"}
    [(ctx, people)] = evaluated
    assert ctx == context_id and len(people) == 4


def test_a_repeated_sync_writes_nothing_and_a_change_writes_one_row(
        fast_runtime: Runtime, moodle_lms: FakeLms, evaluated: list) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    assert sync_context(fast_runtime, context_id).status == "succeeded"
    again = sync_context(fast_runtime, context_id)
    assert (again.status, again.rows_written) == ("succeeded", 0)
    assert len(evaluated) == 1  # nothing changed: nothing to evaluate
    moodle_lms.course.results[5]["4"] = Result(91, 100, "2026-11-23T08:00:00+00:00")
    changed = sync_context(fast_runtime, context_id)
    assert changed.rows_written == 1
    assert _scores(fast_runtime, context_id)[("ags", "Breakout (LTI 1.3)", "4")] == 91
    with fast_runtime.sessions() as db:
        person = db.scalar(select(Person.id).where(Person.sub == "4"))
    assert evaluated[-1] == (context_id, {person})


def test_an_evaluation_that_fails_after_a_sync_is_owed_to_the_next_one(
        fast_runtime: Runtime, moodle_lms: FakeLms, monkeypatch) -> None:
    """The marks stay saved, the instructor is told, and the next sync (even one that changes
    nothing) evaluates every learner of the course, so no changed learner is forgotten."""
    calls: list = []

    def evaluate_changed(db, settings, context_id, people) -> None:
        calls.append(people)
        if len(calls) == 1:
            raise RuntimeError("database went away")

    monkeypatch.setattr(runner, "evaluate_changed", evaluate_changed)
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    first = sync_context(fast_runtime, context_id)
    assert first.status == "succeeded" and "next sync evaluates every learner" in first.error
    assert _scores(fast_runtime, context_id)[("ags", "Breakout (LTI 1.3)", "4")] == 87
    with fast_runtime.sessions() as db:
        run = db.get(SyncRun, first.run_id)
        assert (run.status, run.error) == ("succeeded", first.error)
    second = sync_context(fast_runtime, context_id)
    assert (second.rows_written, second.error) == (0, None)
    assert calls[1] is None  # everyone, although nothing changed in this run
    assert sync_context(fast_runtime, context_id).status == "succeeded"
    assert len(calls) == 2  # the debt was paid: an unchanged course evaluates nobody


def test_a_grade_removed_in_the_lms_is_cleared(fast_runtime: Runtime, moodle_lms: FakeLms
                                               ) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    sync_context(fast_runtime, context_id)
    del moodle_lms.course.results[5]["4"]
    assert sync_context(fast_runtime, context_id).rows_written == 1
    assert _scores(fast_runtime, context_id)[("ags", "Breakout (LTI 1.3)", "4")] is None


def test_learners_who_left_become_inactive_and_keep_their_data(
        fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    sync_context(fast_runtime, context_id)
    moodle_lms.course.remove_member("4")
    assert sync_context(fast_runtime, context_id).status == "succeeded"
    with fast_runtime.sessions() as db:
        active = dict(db.execute(select(Person.sub, Membership.active).join(
            Membership, Membership.person_id == Person.id)).all())
    assert active == {"3": True, "4": False, "5": True, "6": True}
    assert _scores(fast_runtime, context_id)[("moodle_ws", "Essay 1", "4")] == 78


def test_a_failed_sync_leaves_the_previous_data_intact(
        fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    sync_context(fast_runtime, context_id)
    before = _scores(fast_runtime, context_id)
    moodle_lms.course.results[5]["4"] = Result(12, 100, "2026-11-23T08:00:00+00:00")
    moodle_lms.course.members.append(dict(moodle_lms.course.members[0], user_id="77"))
    moodle_lms.fail("/webservice/rest/server.php", status=500, times=100)
    partial = sync_context(fast_runtime, context_id)
    # The web service is skipped with a warning; AGS and the roster are read and saved.
    assert partial.status == "succeeded"
    with fast_runtime.sessions() as db:
        run = db.get(SyncRun, partial.run_id)
        assert run.sources == ["ags", "nrps"]
        assert len(run.warnings) == 1
        assert "Moodle web services could not be read" in run.warnings[0]
        assert "kept failing" in run.warnings[0]
        assert db.scalar(select(func.count()).select_from(Person).where(Person.sub == "77")) == 1
    after = _scores(fast_runtime, context_id)
    assert after != before  # the AGS change of this run was saved
    # Marks the web service gave earlier are kept, never erased.
    assert {k: v for k, v in after.items() if k[0] == "moodle_ws"} == {
        k: v for k, v in before.items() if k[0] == "moodle_ws"}
    assert any(k[0] == "moodle_ws" for k in before)


def test_a_permission_problem_is_explained(fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    """Optional functions missing: the marks are read, each missing function is named."""
    moodle_lms.ws_functions = {"gradereport_user_get_grade_items"}
    context_id = make_context(fast_runtime, moodle_lms)
    result = sync_context(fast_runtime, context_id)
    assert result.status == "succeeded"
    with fast_runtime.sessions() as db:
        run = db.get(SyncRun, result.run_id)
        assert "moodle_ws" in run.sources
        named = " ".join(run.warnings)
    for function in ("core_grades_get_gradeitems", "core_competency_list_course_competencies",
                     "core_grading_get_definitions"):
        assert function in named
    assert "External services" in named
    assert _scores(fast_runtime, context_id)  # the gradebook marks arrived


def test_the_required_function_missing_skips_the_source(fast_runtime: Runtime,
                                                        moodle_lms: FakeLms) -> None:
    moodle_lms.ws_functions = set()
    context_id = make_context(fast_runtime, moodle_lms)
    result = sync_context(fast_runtime, context_id)
    assert result.status == "succeeded"
    with fast_runtime.sessions() as db:
        run = db.get(SyncRun, result.run_id)
        assert run.sources == ["ags", "nrps"]
        assert "gradereport_user_get_grade_items" in run.warnings[0]


def test_an_ordinary_moodle_course_syncs_through_web_services(fast_runtime: Runtime,
                                                             moodle_lms: FakeLms) -> None:
    """Simple direct grading (no rubric) everywhere, as in the captured course: the sync reads
    every gradebook item and raises no warning (activeonly=1 would have failed it)."""
    context_id = make_context(fast_runtime, moodle_lms)
    result = sync_context(fast_runtime, context_id)
    assert result.status == "succeeded" and result.error is None
    with fast_runtime.sessions() as db:
        run = db.get(SyncRun, result.run_id)
        assert run.warnings == [] and "moodle_ws" in run.sources
        labels = set(db.scalars(select(GradeItem.label).where(
            GradeItem.context_id == context_id, GradeItem.source == "moodle_ws")))
    assert {"Essay 1", "Participation (manual)"} <= labels
    sent = [entry for entry in moodle_lms.log if entry[1].startswith("/webservice")]
    assert sent  # the web service was used


def test_429_during_a_sync_is_waited_out(fast_runtime: Runtime, moodle_lms: FakeLms) -> None:
    moodle_lms.fail("/lineitem/results", status=429, retry_after="0", times=2)
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    result = sync_context(fast_runtime, context_id)
    assert result.status == "succeeded"
    assert result.requests == moodle_lms.count("")  # every request counted, retries too
    assert moodle_lms.count("/token.php") == 1  # one token for AGS and NRPS
    assert moodle_lms.count("/lineitem/results") == 4 + 2


def test_moodle_rubric_criteria_and_assessments(fast_runtime: Runtime, moodle_lms: FakeLms
                                                ) -> None:
    add_moodle_rubric(moodle_lms.course, cmid=1, assignment_id=1,
                      fills={"4": {11: 113, 12: 122}, "5": {11: 112, 12: 121}})
    context_id = make_context(fast_runtime, moodle_lms)
    assert sync_context(fast_runtime, context_id).status == "succeeded"
    with fast_runtime.sessions() as db:
        criteria = db.scalars(select(LmsRubricCriterion).order_by(
            LmsRubricCriterion.sort_order)).all()
        assert [(c.description, c.max_points) for c in criteria] == [
            ("Argument", Decimal(10)), ("Sources", Decimal(4))]
        assert [lv["description"] for lv in criteria[0].levels] == [
            "Missing", "Partial", "Convincing"]
        item = db.get(GradeItem, criteria[0].grade_item_id)
        assert item.label == "Essay 1"
        filled = dict(((sub, desc), (pts, lvl)) for sub, desc, pts, lvl in db.execute(
            select(Person.sub, LmsRubricCriterion.description, LmsRubricAssessment.points,
                   LmsRubricAssessment.level_id)
            .join(LmsRubricAssessment, LmsRubricAssessment.person_id == Person.id)
            .join(LmsRubricCriterion,
                  LmsRubricCriterion.id == LmsRubricAssessment.criterion_id)))
    assert filled == {
        ("4", "Argument"): (Decimal(10), "113"), ("4", "Sources"): (Decimal(2), "122"),
        ("5", "Argument"): (Decimal(5), "112"), ("5", "Sources"): (Decimal(0), "121")}
    assert sync_context(fast_runtime, context_id).rows_written == 0
    assert "since=" not in moodle_lms.log[-1][1]  # (POST form; the since value is in the body)


def test_canvas_course_with_rubric_outcomes_and_incremental_fetch(
        fast_runtime: Runtime, canvas_lms: FakeLms) -> None:
    from testkit.fakelms.data import LineItem

    canvas_lms.course.line_items = [LineItem(77, "Data Literacy", 100, resource_link_id="rl")]
    context_id = make_context(fast_runtime, canvas_lms)
    first = sync_context(fast_runtime, context_id)
    assert first.status == "succeeded", first.error
    scores = _scores(fast_runtime, context_id)
    ayse = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
    assert scores[("canvas", "Data cleaning project", ayse)] == 8
    assert scores[("canvas", "Quiz 1", ayse)] == 17
    assert scores[("canvas", "Interprets data", ayse)] == 4
    with fast_runtime.sessions() as db:
        [(points, level)] = db.execute(select(LmsRubricAssessment.points,
                                              LmsRubricAssessment.level_id)).all()
        assert (points, level) == (Decimal(3), "r_2")
        outcome = db.scalar(select(GradeItem).where(GradeItem.kind == "outcome"))
        assert outcome.maximum == 5
    assert "graded_since" not in "".join(p for _, p in canvas_lms.log)
    canvas_lms.course.canvas_submissions[2].update(score=6.0, graded_at="2099-01-01T00:00:00Z")
    second = sync_context(fast_runtime, context_id)
    assert second.rows_written == 1
    [query] = [p for _, p in canvas_lms.log if "students/submissions" in p][-1:]
    assert "graded_since=" in query


def test_a_learner_listed_twice_is_written_once(
        fast_runtime: Runtime, moodle_lms: FakeLms, monkeypatch) -> None:
    """Pages that overlap (an LMS paging by offset while grades change) do not break a sync."""
    from lti_tool.lms.source import AgsSource

    moodle_lms.course.results[5]["5"] = Result(50, 100, "2026-11-22T17:55:04+00:00")
    real_batches = AgsSource.batches

    def overlapping(self, since):
        for batch in real_batches(self, since):
            batch.scores = batch.scores + batch.scores
            if batch.raw is not None:
                batch.raw = batch.raw._replace(entries=batch.raw.entries * 2)
            yield batch

    monkeypatch.setattr(AgsSource, "batches", overlapping)
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    result = sync_context(fast_runtime, context_id)
    assert (result.status, result.scores) == ("succeeded", 2), result.error


def test_a_column_ags_and_web_services_both_list_is_stored_once(
        fast_runtime: Runtime, moodle_lms: FakeLms, evaluated: list) -> None:
    """Moodle's AGS line item N is grade item N of its web services: found by the Moodle story
    (tests/story), where "Breakout (LTI 1.3)" was stored twice and a mapping by that title was
    ambiguous. Once stored from AGS, a sync whose AGS read fails does not bring the copy back."""
    context_id = make_context(fast_runtime, moodle_lms)
    assert sync_context(fast_runtime, context_id).status == "succeeded"

    def active_labels() -> list[str]:
        with fast_runtime.sessions() as db:
            return sorted(db.scalars(select(GradeItem.label).where(
                GradeItem.context_id == context_id, GradeItem.active.is_(True))))

    first = active_labels()
    assert first.count("Breakout (LTI 1.3)") == first.count("Score") == 1
    moodle_lms.fail("/lineitems", status=500, times=100)
    failed_ags = sync_context(fast_runtime, context_id)
    assert failed_ags.status == "succeeded" and any("AGS" in w for w in failed_ags.warnings)
    assert active_labels() == first
