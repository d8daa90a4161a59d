"""`queue_passbacks` (the fast path's bulk queue) writes what `queue_passback` writes for each
decision: new rows, changed rows made pending again, rows equal in value left alone (whatever
their stored spelling, e.g. 50 against 50.0000), rows the session holds as objects, and one
passback job for the course; on generated decisions and stored rows (issue 19)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lti_tool.domain import decisions as flow
from lti_tool.grades import passback
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.evaluation import Decision, GradePassback
from lti_tool.store.models.jobs import Job
from tests.evaluation.conftest import seed_course

SHARES = [Decimal(0), Decimal("0.5"), Decimal(1) / Decimal(3), Decimal(1)]
STATUSES = [flow.IN_PROGRESS, flow.PASSED, flow.FAILED]
# A stored row: none, or (share it shows, status, tries, spelling of its score)
stored_rows = st.one_of(st.none(), st.tuples(
    st.sampled_from(SHARES), st.sampled_from(STATUSES), st.sampled_from(["pending", "sent",
                                                                        "failed"]),
    st.integers(0, 3), st.booleans()))
cases = st.lists(st.tuples(st.sampled_from(SHARES), st.sampled_from(STATUSES), stored_rows,
                           st.booleans()), min_size=4, max_size=4)


def _seed(db: Session, decisions: list[Decision], case: list[tuple[Any, ...]]) -> None:
    for decision, (share, status, stored, _held) in zip(decisions, case, strict=True):
        decision.share_attained, decision.status = share, status
        if stored is not None:
            old_share, old_status, sent, tries, short = stored
            score, activity, grading = passback.passback_values(old_status, old_share)
            db.add(GradePassback(decision_id=decision.id, score_given=score,
                                 activity_progress=activity, grading_progress=grading,
                                 status=sent, tries=tries, last_error="boom" if tries else ""))
            if short:  # stored as another spelling of the same value (50 for 50.0000)
                db.flush()
                db.execute(update(GradePassback).where(GradePassback.decision_id == decision.id)
                           .values(score_given=score.normalize()))
    db.flush()
    db.expunge_all()


def _rows(db: Session, decisions: list[int]) -> list[tuple[Any, ...]]:
    return [(row.decision_id, row.score_given, row.score_maximum, row.activity_progress,
             row.grading_progress, row.status, row.tries, row.last_error, row.sent_at)
            for row in db.scalars(select(GradePassback).where(
                GradePassback.decision_id.in_(decisions)).order_by(GradePassback.decision_id))]


def test_the_bulk_queue_writes_what_queue_passback_writes(db: Session) -> None:
    course = seed_course(db, learners=4)
    offering_id = course.offering.id
    decisions = []
    for learner in course.learners:
        decision = Decision(platform_id=course.platform.id, offering_id=offering_id,
                            person_id=learner.id, status=flow.IN_PROGRESS, reevaluations_used=0,
                            outcomes={}, share_attained=Decimal(0), inputs_digest="")
        db.add(decision)
        decisions.append(decision)
    db.commit()
    ids = [d.id for d in decisions]

    @hypothesis_settings(max_examples=60, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])
    @given(case=cases)
    def check(case: list[tuple[Any, ...]]) -> None:
        results = []
        for bulk in (False, True):
            with db.begin_nested() as savepoint:
                _seed(db, [db.get(Decision, i) for i in ids], case)
                jobs = db.scalar(select(Job.id).order_by(Job.id.desc()).limit(1)) or 0
                for decision_id, (*_, held) in zip(ids, case, strict=True):
                    if held:  # the session holds the row (an earlier step loaded it)
                        db.scalar(select(GradePassback).where(
                            GradePassback.decision_id == decision_id))
                offering = db.get(Offering, offering_id)
                if bulk:
                    passback.queue_passbacks(db, offering, [
                        (d.id, d.status, d.share_attained)
                        for d in (db.get(Decision, i) for i in ids)])
                else:
                    for decision_id in ids:
                        passback.queue_passback(db, db.get(Decision, decision_id))
                db.flush()
                queued = len(db.scalars(select(Job.id).where(Job.id > jobs)).all())
                results.append((_rows(db, ids), queued))
                savepoint.rollback()
            db.info.pop(passback._QUEUED_CONTEXTS, None)
            db.expunge_all()
        assert results[1] == results[0]

    check()
