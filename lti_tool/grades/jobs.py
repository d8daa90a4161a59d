"""The scheduled gradebook sync: every context with an open offering, once per interval.

`scheduled_sync` is the job function (`grades.scheduled_sync` in lti_tool.jobs.registry).
The job ticks more often than the interval and syncs only the contexts that are due, so
courses are spread over time instead of all starting at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_tool.grades.sync import SyncBusy, sync_context
from lti_tool.runtime import Runtime
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Context
from lti_tool.store.models.grades import SyncRun

log = logging.getLogger(__name__)
JOB_ID = "grades.scheduled_sync"


def offering_contexts(db: Session, now: datetime) -> list[int]:
    """Contexts with an offering whose assessment window is still open."""
    return list(db.scalars(select(Offering.context_id).where(Offering.is_open(now))
                           .distinct().order_by(Offering.context_id)))


def due_contexts(db: Session, interval: timedelta, now: datetime | None = None) -> list[int]:
    """Open-offering contexts whose latest sync started more than `interval` ago (or never)."""
    now = now or utcnow()
    candidates = offering_contexts(db, now)
    if not candidates:
        return []
    latest = dict(db.execute(
        select(SyncRun.context_id, func.max(SyncRun.started_at))
        .where(SyncRun.context_id.in_(candidates)).group_by(SyncRun.context_id)).all())
    return [cid for cid in candidates if latest.get(cid) is None or latest[cid] <= now - interval]


def scheduled_sync(runtime: Runtime) -> dict[str, int]:
    """Sync every due context one after the other; a context being synced elsewhere is skipped."""
    interval = timedelta(minutes=max(1, runtime.settings.sync_interval_minutes))
    with runtime.sessions() as db:
        due = due_contexts(db, interval)
    summary = {"succeeded": 0, "failed": 0, "skipped": 0}
    for context_id in due:
        try:
            result = sync_context(runtime, context_id, trigger="schedule")
        except SyncBusy:
            summary["skipped"] += 1
            continue
        summary[result.status] = summary.get(result.status, 0) + 1
        if result.error:
            log.warning("scheduled sync of context %s failed: %s", context_id, result.error)
    return summary


def all_context_ids(db: Session) -> list[int]:
    return list(db.scalars(select(Context.id).order_by(Context.id)))
