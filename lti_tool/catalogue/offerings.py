"""Which offerings an actor may see: the one scoping rule every page, route and service uses.

An offering is run in one course of one platform registration. A learner or an instructor sees
the offerings of the course they launched from; the Office (an admin launch) sees every
offering of its registration, whatever course it launched from. Nobody sees another
registration's offerings, and an actor without a registration (the CLI, the scheduler) sees
none through these functions (they address offerings by id, as the operator).

`visible(actor)` is that rule as one SQL condition; `visible_offering` and `course_offerings`
are the two questions callers ask with it. An offering outside the scope is "not found",
never "forbidden", so ids of other courses are not confirmed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, select
from sqlalchemy.orm import Session

from lti_tool.domain.actors import Actor
from lti_tool.errors import NotFound
from lti_tool.store.models.catalogue import Offering

NOT_FOUND = "No such offering in this course."


def visible(actor: Actor) -> ColumnElement[bool]:
    """The offerings `actor` may see, as a condition on `Offering`."""
    if actor.platform_id is None:
        return false()
    if actor.is_admin:
        return Offering.platform_id == actor.platform_id
    if actor.context_id is None:
        return false()
    return and_(Offering.platform_id == actor.platform_id,
                Offering.context_id == actor.context_id)


def visible_offering(db: Session, actor: Actor, offering_id: int, *,
                     message: str = NOT_FOUND) -> Offering:
    """The offering if `actor` may see it, else NotFound with `message`."""
    offering = db.scalar(select(Offering).where(Offering.id == offering_id, visible(actor)))
    if offering is None:
        raise NotFound(message)
    return offering


def course_offerings(db: Session, actor: Actor, *options: Any) -> list[Offering]:
    """The offerings of the course the actor launched from (that it may see), oldest first;
    `options` are loader options (`selectinload(...)`) for what the caller shows."""
    if actor.context_id is None:
        return []
    return list(db.scalars(
        select(Offering).where(visible(actor), Offering.context_id == actor.context_id)
        .options(*options).order_by(Offering.id)))
