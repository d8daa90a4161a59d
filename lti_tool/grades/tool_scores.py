"""Rubric levels an instructor gives in the tool (per LO, per attempt)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.domain import decisions as flow
from lti_tool.domain.actors import Actor
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.grades.decisions import OfferingRun, get_offering
from lti_tool.settings import Settings
from lti_tool.store.models.evaluation import Decision, ToolRubricScore


def set_tool_rubric_score(db: Session, settings: Settings, offering_id: int, person_id: int,
                          outcome_code: str, level_code: str, actor: Actor, comment: str = "",
                          *, now: datetime | None = None) -> Decision:
    """An instructor scores a learner on an LO's rubric in the tool; the learner is
    re-evaluated at once (a change after a pass raises a review flag)."""
    offering = get_offering(db, offering_id)
    run = OfferingRun.of(db, settings, offering, now=now)
    outcome = next((o for o in run.outcomes if o.code == outcome_code), None)
    if outcome is None:
        raise NotFound(f"{outcome_code!r} is not an outcome of this micro-credential.")
    try:
        outcome.rubric.rank(level_code)
    except KeyError as exc:
        raise BadRequest(f"{level_code!r} is not a level of {outcome_code}'s rubric.") from exc
    if person_id not in run.learner_ids({person_id}):
        raise NotFound("This person is not a learner of this course.")
    decision = run.decisions_for([person_id])[person_id]
    if decision.status in (flow.FAILED, flow.FAILED_FINAL):
        raise Conflict("The assessment is closed for this learner "
                       f"({decision.status}); grant a re-evaluation to score again.")
    attempt = decision.reevaluations_used + 1
    row = db.scalar(select(ToolRubricScore).where(
        ToolRubricScore.offering_id == offering_id, ToolRubricScore.person_id == person_id,
        ToolRubricScore.outcome_code == outcome_code, ToolRubricScore.attempt_no == attempt))
    if row is None:
        row = ToolRubricScore(offering_id=offering_id, person_id=person_id,
                              outcome_code=outcome_code, attempt_no=attempt)
        db.add(row)
    row.level_code, row.comment = level_code, comment[:5000]
    row.scored_by, row.scored_at = actor.person_id, run.now
    db.flush()
    run.run({person_id})
    return decision
