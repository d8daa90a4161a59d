"""What the Office and the operators see of the job outbox: counts, the backlog's age, the
failed jobs with their reasons; the retry button; purging finished jobs.

A job carries the registration it is for (`Job.platform_id`); an Office sees the jobs of its
own institution's registrations (`institution_platforms`), never another institution's, nor
the installation-wide periodic work (no registration), which is the operators' (`/metrics`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lti_tool.store.db import changed_rows, utcnow
from lti_tool.store.models.core import Platform
from lti_tool.store.models.jobs import DONE, RUNNING, STATUSES, WAITING, Job


@dataclass(frozen=True)
class Backlog:
    counts: dict[str, int]
    oldest_waiting: datetime | None  # created_at of the oldest job still waiting

    @property
    def age_seconds(self) -> float:
        if self.oldest_waiting is None:
            return 0.0
        return max(0.0, (utcnow() - self.oldest_waiting).total_seconds())


def institution_platforms(db: Session, institution_id: int | None) -> dict[int, str]:
    """The registrations (id: name) of an institution: its Office sees their jobs only."""
    if institution_id is None:
        return {}
    return dict(db.execute(select(Platform.id, Platform.name)
                           .where(Platform.institution_id == institution_id)).all())


def _scoped(query, platform_ids: set[int] | None):
    return query if platform_ids is None else query.where(Job.platform_id.in_(platform_ids))


def backlog(db: Session, platform_ids: set[int] | None = None) -> Backlog:
    """Jobs by status, and when the oldest waiting one was stored (None: nothing waits)."""
    rows = db.execute(_scoped(select(Job.status, func.count()).group_by(Job.status),
                              platform_ids)).all()
    counts = {status: 0 for status in STATUSES} | dict(rows)
    oldest = db.scalar(_scoped(select(func.min(Job.created_at))
                               .where(Job.status.in_((WAITING, RUNNING))), platform_ids))
    if isinstance(oldest, str):  # SQLite's min() over a UTCDateTime column
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return Backlog(counts=counts, oldest_waiting=oldest)


def listing(db: Session, platform_ids: set[int] | None = None, *, status: str | None = None,
            limit: int = 100) -> list[Job]:
    """Newest first; waiting, running and failed jobs before done ones when no status given."""
    query = _scoped(select(Job), platform_ids)
    if status in STATUSES:
        query = query.where(Job.status == status)
    else:
        query = query.where(Job.status != DONE)
    return list(db.scalars(query.order_by(Job.updated_at.desc(), Job.id.desc()).limit(limit)))


def purge_finished(db: Session, days: int = 14) -> int:
    """Delete done jobs finished more than `days` ago (failed ones stay until retried)."""
    cutoff = utcnow() - timedelta(days=days)
    return changed_rows(db, delete(Job).where(Job.status == DONE, Job.finished_at < cutoff)
                        .execution_options(synchronize_session=False))
