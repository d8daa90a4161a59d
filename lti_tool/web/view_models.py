"""Read-side queries for the pages: a fixed handful of queries per page, scoped by the actor.

Each helper takes the request's `Actor` and filters by its platform (and context or person),
so a page can never show another platform's, course's or learner's rows.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from lti_tool.store.models.core import AuditEntry, Context, Membership, Platform
from lti_tool.web.auth import Actor


def course_of(db: Session, actor: Actor) -> Context | None:
    """The course the launch came from (None for a launch without a context)."""
    if actor.context_id is None:
        return None
    return db.scalar(
        select(Context).where(Context.id == actor.context_id,
                              Context.platform_id == actor.platform_id)
    )


def learner_count(db: Session, actor: Actor) -> int:
    if actor.context_id is None:
        return 0
    return db.scalar(
        select(func.count()).select_from(Membership).where(
            Membership.context_id == actor.context_id,
            Membership.role == "learner",
            Membership.active.is_(True),
        )
    ) or 0


def platform_with_deployments(db: Session, actor: Actor) -> Platform | None:
    return db.scalar(
        select(Platform).where(Platform.id == actor.platform_id)
        .options(selectinload(Platform.deployments))
    )


def audit_page(db: Session, actor: Actor, *, query: str, page: int, size: int
               ) -> list[AuditEntry]:
    """Newest first; `query` matches the action, target or who did it."""
    stmt = select(AuditEntry).where(AuditEntry.platform_id == actor.platform_id)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(or_(
            func.lower(AuditEntry.action).like(like),
            func.lower(AuditEntry.target).like(like),
            func.lower(AuditEntry.actor_label).like(like),
        ))
    stmt = stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    return list(db.scalars(stmt.offset((page - 1) * size).limit(size + 1)))
