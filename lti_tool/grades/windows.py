"""Assessment windows: an offering's window closes at its date or when an instructor finalizes
it, and each re-evaluation has its own; at a close, learners who have not passed fail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from lti_tool.domain import decisions as flow
from lti_tool.domain.actors import Actor
from lti_tool.errors import Conflict
from lti_tool.grades.decisions import OfferingRun, get_offering
from lti_tool.grades.passback import send_passbacks
from lti_tool.grades.transitions import RunSummary
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Membership
from lti_tool.store.models.evaluation import Attempt, Decision


def finalize(db: Session, settings: Settings, offering_id: int, actor: Actor,
             *, now: datetime | None = None) -> RunSummary:
    """Close the offering's assessment window now: unfinished learners become `failed`."""
    offering = get_offering(db, offering_id)
    if offering.finalized_at is not None:
        raise Conflict(f"This offering was already finalized at "
                       f"{offering.finalized_at:%Y-%m-%d %H:%M} UTC.")
    run = OfferingRun.of(db, settings, offering, now=now)
    offering.finalized_at = run.now
    return run.run(None, only_status=flow.IN_PROGRESS, actor=actor)


def close_due_windows(db: Session, now: datetime | None = None,
                      settings: Settings | None = None) -> RunSummary:
    """Scheduler job: close assessment windows and re-evaluation windows that are due."""
    now = now or utcnow()
    summary = RunSummary()
    open_decision = exists().where(Decision.offering_id == Offering.id,
                                   Decision.status == flow.IN_PROGRESS)
    undecided = exists().where(
        Membership.context_id == Offering.context_id, Membership.role == "learner",
        Membership.active.is_(True),
        ~exists().where(Decision.offering_id == Offering.id,
                        Decision.person_id == Membership.person_id))
    due = db.scalars(select(Offering).where(
        ~Offering.is_open(now), open_decision | undecided).order_by(Offering.id)).all()
    for offering in due:
        summary.add(OfferingRun.of(db, settings, offering, now=now).run(None))
    second = db.execute(
        select(Decision.offering_id, Decision.person_id).join(Attempt).where(
            Decision.status == flow.REEVALUATION_GRANTED, Attempt.number == 2,
            ~Attempt.is_open(now))).all()
    by_offering: dict[int, set[int]] = {}
    for offering_id, person_id in second:
        by_offering.setdefault(offering_id, set()).add(person_id)
    for offering_id, people in sorted(by_offering.items()):
        summary.add(OfferingRun.of(db, settings, get_offering(db, offering_id), now=now)
                    .run(people))
    return summary


def run_scheduled(runtime: Any, now: datetime | None = None) -> tuple[RunSummary, dict]:
    """The scheduler's evaluation job: close due windows, then send queued grades.

    Two transactions, so a passback problem never rolls back a closed window.
    """
    with runtime.sessions() as db:
        summary = close_due_windows(db, now, runtime.settings)
        db.commit()
    with runtime.sessions() as db:
        counts = send_passbacks(db, runtime.settings, now=now)
        db.commit()
    return summary, counts
