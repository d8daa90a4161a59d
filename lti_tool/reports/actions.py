"""The improvement action plan (directive Art. 10/2, the PDCA cycle of Art. 7/2).

Actions are linked to a finding of a year's report (and optionally a micro-credential); they
are followed up (status, result) and carried into the next year's report with their results.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lti_tool.errors import BadRequest, NotFound
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredential
from lti_tool.store.models.reports import ImprovementAction

STATUSES = ("planned", "in_progress", "done", "dropped")
OPEN_STATUSES = ("planned", "in_progress")
MAX_TEXT = 2000


def _due(raw: str) -> datetime:
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise BadRequest("Give the due date as YYYY-MM-DD.") from exc
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _text(form: Mapping[str, str], name: str, *, required: bool, limit: int = MAX_TEXT) -> str:
    value = (form.get(name) or "").strip()
    if required and not value:
        raise BadRequest(f"The field '{name}' is required.")
    if len(value) > limit:
        raise BadRequest(f"The field '{name}' may have at most {limit} characters.")
    return value


def create_action(db: Session, *, institution_id: int, platform_id: int | None,
                  person_id: int | None, form: Mapping[str, str]) -> ImprovementAction:
    """A new action from the report page: year, finding, action, owner, due date, MC."""
    try:
        year = int(form.get("year") or "")
    except ValueError as exc:
        raise BadRequest("The report year is missing.") from exc
    if not 2000 <= year <= 2100:
        raise BadRequest("The report year is out of range.")
    mc_id = None
    if form.get("micro_credential_id"):
        try:
            mc_id = int(form["micro_credential_id"])
        except ValueError as exc:
            raise BadRequest("Choose a micro-credential from the list.") from exc
        if db.scalar(select(MicroCredential.id).where(
                MicroCredential.id == mc_id,
                MicroCredential.institution_id == institution_id)) is None:
            raise NotFound("No such micro-credential in your catalogue.")
    action = ImprovementAction(
        institution_id=institution_id, platform_id=platform_id, year=year,
        micro_credential_id=mc_id,
        finding=_text(form, "finding", required=True),
        action=_text(form, "action", required=True),
        owner=_text(form, "owner", required=True, limit=200),
        due_on=_due(form.get("due_on") or ""), status="planned",
        created_by_person_id=person_id)
    db.add(action)
    db.flush()
    return action


def update_action(db: Session, *, institution_id: int, action_id: int,
                  form: Mapping[str, str]) -> ImprovementAction:
    """Follow an action up: its status and result (and a new due date when given)."""
    action = db.scalar(select(ImprovementAction).where(
        ImprovementAction.id == action_id, ImprovementAction.institution_id == institution_id))
    if action is None:
        raise NotFound("No such improvement action.")
    status = form.get("status") or ""
    if status not in STATUSES:
        raise BadRequest("Choose a status from the list.")
    result = _text(form, "result", required=False)
    due = _due(form["due_on"]) if (form.get("due_on") or "").strip() else action.due_on
    action.status, action.result, action.due_on = status, result, due
    db.flush()
    return action


def overdue_actions(db: Session, institution_id: int, now: datetime | None = None
                    ) -> list[ImprovementAction]:
    """Open actions past their due date, oldest due first (the Office home lists them)."""
    return list(db.scalars(select(ImprovementAction).where(
        ImprovementAction.institution_id == institution_id,
        ImprovementAction.status.in_(OPEN_STATUSES),
        ImprovementAction.due_on < (now or utcnow())).order_by(ImprovementAction.due_on)))


def actions_for_year(db: Session, institution_id: int, year: int) -> list[ImprovementAction]:
    """The year's own actions and those of earlier years still open or closed in this year:
    what the report carries forward with its results."""
    start = datetime(year, 1, 1, tzinfo=UTC)
    return list(db.scalars(select(ImprovementAction).where(
        ImprovementAction.institution_id == institution_id, ImprovementAction.year <= year,
        or_(ImprovementAction.year == year, ImprovementAction.status.in_(OPEN_STATUSES),
            ImprovementAction.updated_at >= start))
        .order_by(ImprovementAction.year, ImprovementAction.due_on, ImprovementAction.id)))
