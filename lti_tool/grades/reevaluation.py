"""The one re-evaluation (Art. 9/3): granted by an instructor, or asked for by the learner.

Whether a learner may ask, and until when, is the domain's rule
(`lti_tool.domain.decisions.request_refusal` and `request_deadline`); the learner's page uses
the same rule through `request_window`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain import decisions as flow
from lti_tool.domain.actors import Actor, labelled
from lti_tool.errors import Conflict
from lti_tool.grades.decisions import OfferingRun, get_decision, get_offering
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.evaluation import Decision, ReevaluationRequest


def request_deadline(offering: Offering, decision: Decision) -> datetime | None:
    """Learners may ask for their re-evaluation up to `reevaluation_window_days` after the
    failing decision (the learner page shows the same date)."""
    failed_at = decision.decided_at or offering.finalized_at or offering.window_closes_at
    return flow.request_deadline(failed_at, offering.reevaluation_window_days)


@dataclass(frozen=True)
class RequestWindow:
    """What the learner's page shows about asking for a re-evaluation."""

    may_request: bool
    deadline: datetime | None
    refusal: str | None


def request_window(offering: Offering, decision: Decision, *, already_requested: bool,
                   now: datetime | None = None) -> RequestWindow:
    deadline = request_deadline(offering, decision)
    refusal = flow.request_refusal(
        flow.DecisionState(decision.status, decision.reevaluations_used), deadline=deadline,
        now=now or utcnow(), already_requested=already_requested)
    return RequestWindow(may_request=refusal is None, deadline=deadline, refusal=refusal)


def grant_reevaluation(db: Session, settings: Settings, offering_id: int, person_id: int,
                       actor: Actor, *, closes_at: datetime | None = None, reason: str = "",
                       now: datetime | None = None) -> Decision:
    """An instructor grants a failed learner their one re-evaluation (Art. 9/3)."""
    offering = get_offering(db, offering_id)
    decision = get_decision(db, offering_id, person_id)
    OfferingRun.of(db, settings, offering, now=now).reevaluate(
        decision, actor=actor, via="instructor", closes_at=closes_at, reason=reason)
    return decision


def request_reevaluation(db: Session, settings: Settings, offering_id: int, person_id: int,
                         reason: str = "", *, now: datetime | None = None) -> Decision:
    """A learner asks for their re-evaluation: granted at once under the `learner_request`
    policy, recorded for the instructor under `instructor`."""
    offering = get_offering(db, offering_id)
    decision = get_decision(db, offering_id, person_id)
    run = OfferingRun.of(db, settings, offering, now=now)
    refusal = flow.request_refusal(
        flow.DecisionState(decision.status, decision.reevaluations_used),
        deadline=request_deadline(offering, decision), now=run.now)
    if refusal is not None:
        raise Conflict(refusal)
    try:
        with db.begin_nested():
            db.add(ReevaluationRequest(decision_id=decision.id, person_id=person_id,
                                       reason=reason[:2000], requested_at=run.now))
    except IntegrityError as exc:
        raise Conflict(flow.request_refusal(
            flow.DecisionState(decision.status, decision.reevaluations_used), deadline=None,
            now=run.now, already_requested=True) or "") from exc
    if offering.reevaluation_policy == "learner_request":
        run.reevaluate(decision, actor=labelled(f"learner:{person_id}", role="learner"),
                       via="learner_request", reason=reason)
    return decision


def has_requested(db: Session, decision_id: int) -> bool:
    return db.scalar(select(ReevaluationRequest.id).where(
        ReevaluationRequest.decision_id == decision_id)) is not None
