"""Every path of the decision state machine through the service, with the chain verified."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from lti_tool.badges.issuance import find_credential
from lti_tool.domain.evaluation import GRADE_ITEM, RULE_VERSION, SourceSpec
from lti_tool.errors import BadRequest, Conflict
from lti_tool.grades import evaluation as ev
from lti_tool.grades import transitions
from lti_tool.grades.evidence import export_evidence, verify_chain
from lti_tool.grades.passback import send_passbacks
from lti_tool.lms.http import LmsUnavailable
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.evaluation import (
    Decision,
    EvidenceRecord,
    GradePassback,
    ImmutableEvidence,
    OfferingLineItem,
    ReevaluationRequest,
    ReviewFlag,
)
from tests.evaluation.conftest import Course, seed_course


@pytest.fixture
def badges(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Stand in for the badges area's `issue_on_pass` and record each call."""
    calls: list[dict] = []
    monkeypatch.setattr(transitions, "issue_on_pass",
                        lambda db, settings, **kw: calls.append(kw))
    return calls


def decision_of(course: Course, n: int = 0) -> Decision:
    return course.db.scalars(select(Decision).where(
        Decision.offering_id == course.offering.id,
        Decision.person_id == course.learners[n].id)).one()


def attain_lo1_lo2(course: Course, n: int = 0) -> None:
    learner = course.learners[n]
    course.mark(learner, "quiz1", "7")      # 70 %
    course.mark(learner, "quiz2", "14")     # 70 % -> LO1 = 70 exactly: proficient
    course.mark(learner, "project", "90")   # LO2 exemplary


def chain_ok(course: Course, settings: Settings) -> None:
    assert verify_chain(course.db, settings) is None


def events(course: Course, n: int = 0) -> list[str]:
    return list(course.db.scalars(select(EvidenceRecord.event).where(
        EvidenceRecord.person_id == course.learners[n].id).order_by(EvidenceRecord.seq)))


@pytest.fixture
def mapped(course: Course, settings) -> Course:
    ev.save_mapping(course.db, settings, course.offering.id, course.mapping(),
                    course.by)
    return course


def test_passes_as_soon_as_every_required_lo_is_attained(mapped: Course, settings,
                                                         badges) -> None:
    course = mapped
    attain_lo1_lo2(course)
    summary = ev.evaluate_changed(course.db, settings, course.context.id, {course.learners[0].id})
    assert summary.evaluated == 1 and summary.passed == 0
    assert decision_of(course).outcomes["LO3"]["status"] == "not_yet_assessed"
    ev.set_tool_rubric_score(course.db, settings, course.offering.id, course.learners[0].id,
                             "LO3", "proficient", course.by, "Clear argument")
    decision = decision_of(course)
    assert decision.status == "passed" and decision.passed_via == "evaluation"
    assert decision.mapping_id is not None
    assert badges == [{"person_id": course.learners[0].id,
                       "mc_version_id": course.offering.mc_version_id,
                       "offering_id": course.offering.id,
                       "outcome_levels": {"LO1": "proficient", "LO2": "exemplary",
                                          "LO3": "proficient"},
                       "passed_at": decision.passed_at}]
    assert events(course) == ["passed"]
    payload = json.loads(course.db.scalar(select(EvidenceRecord.payload)))
    assert payload["mapping"]["version"] == 1 and payload["rule_version"] == RULE_VERSION
    lo1 = next(o for o in payload["outcomes"] if o["code"] == "LO1")
    assert lo1["percent"] == "70.0000" and {i["score"] for i in lo1["inputs"]} == {"7", "14"}
    passback = course.db.scalar(select(GradePassback).where(
        GradePassback.decision_id == decision.id))
    assert (passback.score_given, passback.activity_progress, passback.grading_progress) == \
        (Decimal("100.0000"), "Completed", "FullyGraded")
    chain_ok(course, settings)


def test_window_close_fails_unfinished_learners_and_missing_marks_count(mapped: Course,
                                                                       settings) -> None:
    course = mapped
    course.mark(course.learners[0], "project", "95")
    ev.evaluate_changed(course.db, settings, course.context.id)
    assert decision_of(course).outcomes["LO1"]["status"] == "not_yet_assessed"
    later = course.offering.window_closes_at + timedelta(minutes=1)
    summary = ev.close_due_windows(course.db, later, settings)
    assert summary.failed == 3
    decision = decision_of(course)
    assert decision.status == "failed"
    assert decision.outcomes["LO1"]["status"] == "not_attained"
    assert decision.outcomes["LO2"]["status"] == "attained"
    assert ev.close_due_windows(course.db, later, settings).evaluated == 0  # idempotent
    chain_ok(course, settings)


def test_reevaluation_reassesses_only_what_was_not_attained(mapped: Course, settings,
                                                            badges) -> None:
    course, learner = mapped, mapped.learners[0]
    attain_lo1_lo2(course)
    ev.set_tool_rubric_score(course.db, settings, course.offering.id, learner.id, "LO3",
                             "developing", course.by)
    ev.finalize(course.db, settings, course.offering.id, course.by)
    assert decision_of(course).status == "failed"
    ev.grant_reevaluation(course.db, settings, course.offering.id, learner.id,
                          course.by, reason="illness")
    decision = decision_of(course)
    assert decision.status == "reevaluation_granted" and decision.reevaluations_used == 1
    assert decision.outcomes["LO1"]["carried_over"] is True
    assert decision.outcomes["LO3"]["status"] == "not_yet_assessed"  # attempt-2 score needed
    course.mark(learner, "quiz1", "0")  # an attained LO carries over whatever happens later
    ev.set_tool_rubric_score(course.db, settings, course.offering.id, learner.id, "LO3",
                             "exemplary", course.by)
    decision = decision_of(course)
    assert decision.status == "passed"
    assert badges[-1]["outcome_levels"]["LO1"] == "proficient"
    assert events(course) == ["failed", "reevaluation_granted", "passed"]
    chain_ok(course, settings)


def test_second_reevaluation_is_refused_and_its_close_is_final(mapped: Course,
                                                              settings) -> None:
    course, learner = mapped, mapped.learners[0]
    ev.finalize(course.db, settings, course.offering.id, course.by)
    closes = utcnow() + timedelta(days=3)
    ev.grant_reevaluation(course.db, settings, course.offering.id, learner.id,
                          course.by, closes_at=closes)
    with pytest.raises(Conflict, match="one re-evaluation"):
        ev.grant_reevaluation(course.db, settings, course.offering.id, learner.id,
                              course.by)
    ev.close_due_windows(course.db, closes + timedelta(seconds=1), settings)
    assert decision_of(course).status == "failed_final"
    with pytest.raises(Conflict, match="one re-evaluation"):
        ev.grant_reevaluation(course.db, settings, course.offering.id, learner.id,
                              course.by)
    with pytest.raises(Conflict, match="closed"):
        ev.set_tool_rubric_score(course.db, settings, course.offering.id, learner.id, "LO3",
                                 "exemplary", course.by)
    assert events(course) == ["failed", "reevaluation_granted", "failed_final"]
    chain_ok(course, settings)


def test_grant_while_in_progress_is_a_clear_conflict(mapped: Course, settings) -> None:
    ev.evaluate_changed(mapped.db, settings, mapped.context.id)
    with pytest.raises(Conflict, match="still open"):
        ev.grant_reevaluation(mapped.db, settings, mapped.offering.id, mapped.learners[0].id,
                              mapped.by)


def test_prior_learning_passes_with_evidence_per_lo(mapped: Course, settings, badges) -> None:
    course, learner = mapped, mapped.learners[1]
    with pytest.raises(BadRequest, match="LO2: describe"):
        ev.recognise_prior_learning(course.db, settings, course.offering.id, learner.id,
                                    course.by, {"LO1": {"evidence": "cert"}})
    with pytest.raises(BadRequest, match="does not attain"):
        ev.recognise_prior_learning(course.db, settings, course.offering.id, learner.id,
                                    course.by,
                                    {c: {"evidence": "x", "level": "developing"}
                                     for c in ("LO1", "LO2", "LO3")})
    ev.recognise_prior_learning(course.db, settings, course.offering.id, learner.id,
                                course.by,
                                {"LO1": {"evidence": "AWS cert"}, "LO2": {"evidence": "job"},
                                 "LO3": {"evidence": "portfolio", "level": "exemplary"}})
    decision = decision_of(course, 1)
    assert (decision.status, decision.passed_via) == ("passed", "prior_learning")
    assert badges[-1]["outcome_levels"]["LO3"] == "exemplary"
    assert events(course, 1) == ["passed"]
    chain_ok(course, settings)


@pytest.mark.parametrize(("policy", "status_after_request"), [
    ("learner_request", "reevaluation_granted"), ("instructor", "failed")])
def test_learner_request_follows_policy(db, settings, policy: str,
                                        status_after_request: str) -> None:
    course = seed_course(db, policy=policy)
    ev.save_mapping(db, settings, course.offering.id, course.mapping(), course.by)
    ev.finalize(db, settings, course.offering.id, course.by)
    learner = course.learners[0]
    ev.request_reevaluation(db, settings, course.offering.id, learner.id, "I was ill")
    assert decision_of(course).status == status_after_request
    if policy == "instructor":
        with pytest.raises(Conflict, match="already requested"):
            ev.request_reevaluation(db, settings, course.offering.id, learner.id)
        ev.grant_reevaluation(db, settings, course.offering.id, learner.id, course.by)
        request = db.scalar(select(ReevaluationRequest))
        assert request.status == "granted" and request.handled_by == course.instructor.id
    else:
        with pytest.raises(Conflict, match="one re-evaluation"):
            ev.request_reevaluation(db, settings, course.offering.id, learner.id)
    assert verify_chain(db, settings) is None


def test_automatic_policy_grants_at_close(db, settings) -> None:
    course = seed_course(db, policy="automatic")
    ev.save_mapping(db, settings, course.offering.id, course.mapping(), course.by)
    ev.finalize(db, settings, course.offering.id, course.by)
    decision = decision_of(course)
    assert decision.status == "reevaluation_granted"
    assert events(course) == ["failed", "reevaluation_granted"]
    assert verify_chain(db, settings) is None


def test_a_mark_changed_after_a_pass_is_flagged_not_revoked(mapped: Course, settings) -> None:
    course, learner = mapped, mapped.learners[0]
    attain_lo1_lo2(course)
    ev.set_tool_rubric_score(course.db, settings, course.offering.id, learner.id, "LO3",
                             "proficient", course.by)
    assert decision_of(course).status == "passed"
    credential = find_credential(course.db, learner.id, course.offering.mc_version_id)
    assert credential is not None  # the real badges issuance ran in the pass's transaction
    ev.evaluate_changed(course.db, settings, course.context.id, {learner.id})
    assert course.db.scalar(select(func.count(ReviewFlag.id))) == 0  # nothing changed
    course.mark(learner, "project", "20")
    summary = ev.evaluate_changed(course.db, settings, course.context.id, {learner.id})
    assert summary.flagged == 1
    flag = course.db.scalar(select(ReviewFlag))
    assert flag.details["would_lose"] == ["LO2"] and "LO2" in flag.reason
    assert decision_of(course).status == "passed"
    ev.evaluate_changed(course.db, settings, course.context.id, {learner.id})
    assert course.db.scalar(select(func.count(ReviewFlag.id))) == 1  # not flagged twice
    assert events(course) == ["passed", "review_flagged"]
    assert find_credential(course.db, learner.id, course.offering.mc_version_id) is not None
    chain_ok(course, settings)


def test_only_named_learners_are_evaluated(mapped: Course, settings) -> None:
    course = mapped
    assert ev.evaluate_changed(course.db, settings, course.context.id).evaluated == 3
    course.mark(course.learners[2], "project", "40")
    rerun = ev.evaluate_changed(course.db, settings, course.context.id)
    assert (rerun.evaluated, rerun.changed) == (3, 1)
    one = ev.evaluate_changed(course.db, settings, course.context.id, {course.learners[2].id})
    assert one.evaluated == 1
    assert ev.evaluate_changed(course.db, settings, course.context.id, set()).evaluated == 0


def test_finalize_twice_is_a_conflict(mapped: Course, settings) -> None:
    ev.finalize(mapped.db, settings, mapped.offering.id, mapped.by)
    with pytest.raises(Conflict, match="already finalized"):
        ev.finalize(mapped.db, settings, mapped.offering.id, mapped.by)


def test_mapping_versions_and_bad_mappings(mapped: Course, settings) -> None:
    course = mapped
    second = ev.save_mapping(course.db, settings, course.offering.id, course.mapping(),
                             course.by)
    assert second.version == 2
    bad = {"LO1": [SourceSpec("grade_item", "999999", Decimal(1))], "LOX": []}
    with pytest.raises(BadRequest) as caught:
        ev.save_mapping(course.db, settings, course.offering.id, bad, course.by)
    paths = {p["path"] for p in caught.value.details["problems"]}
    assert paths == {"outcomes.LO1.sources[0].ref", "outcomes.LOX"}


def test_preview_writes_nothing(mapped: Course, settings) -> None:
    course = mapped
    attain_lo1_lo2(course)
    course.db.commit()
    before = course.db.scalar(select(func.count(Decision.id)))
    rows = ev.preview_mapping(course.db, course.offering.id, course.mapping())
    assert not course.db.new and not course.db.dirty
    course.db.rollback()
    assert course.db.scalar(select(func.count(Decision.id))) == before
    first = next(r for r in rows if r["person_id"] == course.learners[0].id)
    assert first["outcomes"]["LO1"] == {"level": "proficient", "status": "attained",
                                        "percent": "70.0000"}


def test_tampering_is_named_by_verify(mapped: Course, settings) -> None:
    course = mapped
    ev.finalize(course.db, settings, course.offering.id, course.by)
    course.db.commit()
    records = course.db.scalars(select(EvidenceRecord).order_by(EvidenceRecord.seq)).all()
    assert len(records) == 3 and verify_chain(course.db, settings) is None
    records[1].payload = records[1].payload.replace("failed", "passed")
    with pytest.raises(ImmutableEvidence):
        course.db.flush()
    course.db.rollback()
    course.db.execute(text("UPDATE evidence_record SET payload = replace(payload, "
                           "'\"to\":\"failed\"', '\"to\":\"passed\"') WHERE seq = 2"))
    broken = verify_chain(course.db, settings)
    assert broken is not None and broken.problem.seq == 2 and "edited" in broken.problem.reason
    assert f"evidence record {broken.problem.id} (seq 2)" in str(broken)


def test_removing_the_last_record_is_detected(mapped: Course, settings) -> None:
    ev.finalize(mapped.db, settings, mapped.offering.id, mapped.by)
    mapped.db.flush()
    mapped.db.execute(text("DELETE FROM evidence_record WHERE seq = 3"))
    broken = verify_chain(mapped.db, settings)
    assert broken is not None and "removed" in broken.problem.reason


def test_export_gives_one_learners_records(mapped: Course, settings) -> None:
    ev.finalize(mapped.db, settings, mapped.offering.id, mapped.by)
    mapped.db.commit()
    data = export_evidence(mapped.db, mapped.platform.id, mapped.learners[0].id)
    assert [r["event"] for r in data["records"]] == ["failed"]
    assert data["decisions"][0]["status"] == "failed" and data["chain"]["verified"] is True
    json.dumps(data)  # JSON-ready


class FakeAgs:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.scores: list[tuple[str, dict]] = []
        self.items: list[dict] = []

    def create_line_item(self, lineitems_url: str, item: dict) -> str:
        self.items.append(item)
        return lineitems_url + "/1"

    def post_score(self, lineitem_url: str, score: dict) -> dict:
        if self.fail:
            raise ConnectionError("LMS down")
        self.scores.append((lineitem_url, score))
        return {}


def test_passback_failure_is_recorded_and_retried_without_undoing(mapped: Course,
                                                                 settings) -> None:
    course = mapped
    ev.finalize(course.db, settings, course.offering.id, course.by)
    down = FakeAgs(fail=True)
    counts = send_passbacks(course.db, settings, client_for=lambda *_: down)
    assert counts["failed"] == 3
    row = course.db.scalar(select(GradePassback).order_by(GradePassback.id).limit(1))
    assert row.status == "failed" and "LMS down" in row.last_error
    assert decision_of(course).status == "failed"
    up = FakeAgs()
    assert send_passbacks(course.db, settings, client_for=lambda *_: up)["sent"] == 3
    assert down.items[0]["label"] == "Micro-credential: Data Literacy"
    assert up.items == []  # the column made by the failed run is kept, not made again
    assert course.db.scalar(select(func.count(OfferingLineItem.id))) == 1
    url, score = up.scores[0]
    assert url.endswith("/lineitems/1")
    assert (score["activityProgress"], score["gradingProgress"]) == ("Completed", "FullyGraded")
    assert score["scoreGiven"] == 0.0 and score["scoreMaximum"] == 100.0


def test_requests_close_after_the_reevaluation_window(db, settings) -> None:
    course = seed_course(db, policy="learner_request")
    ev.save_mapping(db, settings, course.offering.id, course.mapping(), course.by)
    ev.finalize(db, settings, course.offering.id, course.by)
    late = utcnow() + timedelta(days=15)
    with pytest.raises(Conflict, match="closed on"):
        ev.request_reevaluation(db, settings, course.offering.id, course.learners[0].id, now=late)
    assert decision_of(course).status == "failed"


def test_the_reevaluation_uses_its_own_sources_and_close_date(mapped: Course, settings,
                                                              badges) -> None:
    """A resubmission item mapped for attempt 2 decides the re-assessed LO; the first
    attempt's mapping and marks are untouched, and the decision records attempt 2's mapping."""
    course, learner = mapped, mapped.learners[0]
    attain_lo1_lo2(course)
    ev.set_tool_rubric_score(course.db, settings, course.offering.id, learner.id, "LO3",
                             "developing", course.by)
    course.mark(learner, "retake", "95")  # not a source of attempt 1: no effect yet
    ev.finalize(course.db, settings, course.offering.id, course.by)
    assert decision_of(course).status == "failed"
    closes = utcnow() + timedelta(days=7)
    ev.grant_reevaluation(course.db, settings, course.offering.id, learner.id, course.by,
                          closes_at=closes)
    second = course.mapping()
    second["LO3"] = [SourceSpec(GRADE_ITEM, str(course.items["retake"].id), Decimal(1))]
    mapping = ev.save_mapping(course.db, settings, course.offering.id, second, course.by,
                              attempt_no=2)
    decision = decision_of(course)
    assert (decision.status, decision.mapping_id) == ("passed", mapping.id)
    assert decision.outcomes["LO3"]["level"] == "exemplary"
    assert decision.outcomes["LO1"]["carried_over"] is True
    assert ev.current_mapping(course.db, course.offering.id, 1).version == 1
    payload = json.loads(course.db.scalar(select(EvidenceRecord.payload).where(
        EvidenceRecord.event == "passed")))
    assert (payload["attempt"], payload["mapping"]["attempt_no"]) == (2, 2)
    # The other learners' first attempt is still decided on attempt 1's mapping.
    assert decision_of(course, 1).status == "failed"
    chain_ok(course, settings)


class BusyAgs(FakeAgs):
    """An LMS that answers every score with 429 after the retries."""

    def post_score(self, lineitem_url: str, score: dict) -> dict:
        raise LmsUnavailable("The LMS kept failing (HTTP 429); try again later.")


def test_a_busy_lms_does_not_hold_up_other_courses(db, settings) -> None:
    """The busy course's first score fails, its others wait untouched, and the other course's
    scores are sent in the same run although the limit is smaller than the busy backlog."""
    busy = seed_course(db, issuer="https://busy.example.edu", learners=4)
    fine = seed_course(db, issuer="https://fine.example.edu", learners=2)
    for course in (busy, fine):
        ev.save_mapping(db, settings, course.offering.id, course.mapping(), course.by)
    up = FakeAgs()

    def client_for(db, settings, context):
        return BusyAgs() if context.id == busy.context.id else up

    counts = send_passbacks(db, settings, limit=3, client_for=client_for)
    assert counts == {"sent": 2, "failed": 1, "skipped": 0, "deferred": 2}
    assert len(up.scores) == 2
    statuses = sorted(db.scalars(select(GradePassback.status).join(Decision).where(
        Decision.offering_id == busy.offering.id)))
    assert statuses == ["failed", "pending", "pending", "pending"]


def test_scores_skipped_without_ags_are_sent_once_a_launch_brings_it(mapped: Course,
                                                                    settings) -> None:
    course = mapped
    course.context.ags_lineitems_url = None
    ev.evaluate_changed(course.db, settings, course.context.id)
    up = FakeAgs()
    assert send_passbacks(course.db, settings, client_for=lambda *_: up)["skipped"] == 3
    assert send_passbacks(course.db, settings, client_for=lambda *_: up)["skipped"] == 0
    course.context.ags_lineitems_url = "https://lms.example.edu/lineitems"  # a new launch
    assert send_passbacks(course.db, settings, client_for=lambda *_: up)["sent"] == 3
    assert len(up.scores) == 3
