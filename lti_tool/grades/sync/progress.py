"""What the "Sync now" page shows while a sync waits or runs, in the database (`sync_progress`),
so whichever web node serves the page shows it.

- `waiting`: written with the requested sync's job, in the request's own transaction
  (`lti_tool.grades.sync.queue.request_sync`); the page says waiting while that job waits, or
  has been taken but its sync has not started yet.
- `running` with the step counts: written by the sync from short transactions of its own, never
  from the sync's transaction (that one commits only at the end). Counts are written about
  `STEPS` times per phase at most, without waiting for a lock. Not on SQLite: there a write by
  another connection between the sync's first read and its first write makes the sync's own
  write fail ("database is locked", its snapshot is stale), and after that the sync holds the
  database's one write lock until it commits; the page shows the sync running, without counts.
- `succeeded` / `failed` when it ends.

`sync_state` (`is_running`) answers the page from one consistent read of this row, the last
`SyncRun` and the lease.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from lti_tool.grades.sync.lease import LEASE
from lti_tool.store.db import utcnow
from lti_tool.store.models.grades import SyncProgress
from lti_tool.store.models.jobs import RUNNING as JOB_RUNNING
from lti_tool.store.models.jobs import Job

log = logging.getLogger(__name__)

WAITING, RUNNING, SUCCEEDED, FAILED = "waiting", "running", "succeeded", "failed"
STEPS = 100  # the counts are written about this many times per phase at most
_FIELDS = ("state", "phase", "done", "total", "error", "run_id")


def _upsert(db: Session, context_id: int, values: dict[str, Any]) -> None:
    values = {**values, "updated_at": utcnow()}
    dialect = db.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SyncProgress)
    defaults = {"state": WAITING, "phase": "", "done": 0, "total": 0, "generation": 0}
    db.execute(insert.values(context_id=context_id, **(defaults | values))
               .on_conflict_do_update(index_elements=["context_id"], set_=values))


def set_progress(factory: sessionmaker[Session], context_id: int, *, wait: bool = True,
                 **values: Any) -> bool:
    """Write the context's progress in a transaction of its own; False when it was skipped.

    `wait=False` (the step counts) gives up soon when the row is locked.
    """
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise TypeError(f"not a progress field: {sorted(unknown)}")
    with factory() as db:
        try:
            if not wait and db.get_bind().dialect.name == "postgresql":
                db.execute(text("SET LOCAL lock_timeout = '200ms'"))
            _upsert(db, context_id, values)
            db.commit()
            return True
        except DBAPIError as exc:  # locked: a count is skipped, an end state is logged
            db.rollback()
            if wait:
                log.warning("sync progress of context %s not written: %s", context_id,
                            type(exc.orig).__name__)
            return False


def mark_waiting(db: Session, context_id: int, job_id: int, generation: int) -> None:
    """In the transaction that stored the sync's job: the page shows it waiting."""
    _upsert(db, context_id, {"state": WAITING, "phase": "", "done": 0, "total": 0,
                             "error": None, "run_id": None, "job_id": job_id,
                             "generation": generation})


class LiveProgress:
    """The sync's `progress(done, total, phase)` callback: writes the counts to the page's row
    on each new phase and whenever another hundredth of the items is done (never the same
    counts twice, so a few hundred small writes per sync at most), never waiting for a lock."""

    def __init__(self, factory: sessionmaker[Session], context_id: int) -> None:
        self.factory, self.context_id = factory, context_id
        self.written: tuple[str, int, int] | None = None  # phase, total, done
        bind = factory.kw.get("bind")
        self.enabled = bind is None or bind.dialect.name != "sqlite"  # see the module's doc

    def __call__(self, done: int, total: int, phase: str) -> None:
        if not self.enabled:
            return
        if self.written is not None:
            last_phase, last_total, last_done = self.written
            if (phase, total) == (last_phase, last_total) and done != total \
                    and abs(done - last_done) < max(1, total // STEPS):
                return
        self.written = (phase, total, done)
        set_progress(self.factory, self.context_id, wait=False, done=done, total=total,
                     phase=phase[:100])


def progress_of(db: Session, context_id: int, now: datetime | None = None
                ) -> dict[str, Any] | None:
    """The page's view of the row: state (`waiting`, `running`, `succeeded`, `failed`), phase,
    counts and error; None when nothing was recorded or what was is stale."""
    row = db.get(SyncProgress, context_id)
    if row is None:
        return None
    now = now or utcnow()
    state: str | None = row.state
    job_status = None if row.job_id is None else db.scalar(
        select(Job.status).where(Job.id == row.job_id))
    if state == RUNNING and row.updated_at < now - LEASE:
        state = None  # its worker was killed mid-sync: the SyncRun row and the lease decide
    elif state != RUNNING and job_status == WAITING:
        state = WAITING  # requested, or failed and waiting for its next attempt
    elif state == WAITING and job_status != JOB_RUNNING:
        state = None  # the job ended without syncing (another sync ran, or it gave up)
    return {"state": state, "phase": row.phase, "done": row.done, "total": row.total,
            "error": row.error, "run_id": row.run_id, "job_id": row.job_id}


def is_running(last_status: str | None, last_started: datetime | None, *, lease_held: bool,
               live_state: str | None, now: datetime, lease: timedelta) -> bool:
    """Whether a sync of the context runs, from one read of what the page shows.

    The last run's own row wins: a run recorded as `running` is running (the progress and the
    lease may already be gone when the page reads them a moment later), unless it is older than
    a lease and nobody holds one (a worker killed mid-sync). Before its row exists, a starting
    sync shows through the lease or the progress row.
    """
    if last_status == "running" and last_started is not None:
        return lease_held or live_state == RUNNING or last_started > now - lease
    return lease_held or live_state == RUNNING
