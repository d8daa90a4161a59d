"""`enqueue`: write a job into the outbox inside the caller's transaction.

On PostgreSQL the same transaction also defers a procrastinate job that carries the outbox
row's id (through procrastinate's own API, on the caller's connection), so the work reaches a
worker exactly when the change that asked for it commits, and never when it rolls back. On
SQLite the in-process runner polls the outbox and is woken at once after the commit when it runs
in the same process (the demo).
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lti_tool.logs import REQUEST_ID
from lti_tool.store.db import utcnow
from lti_tool.store.models.jobs import Job

QUEUE = "lti_tool"
RUN_TASK = "lti_tool.run_job"
DEFAULT_MAX_ATTEMPTS = 8
_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
WAKE = threading.Event()  # set after a commit that enqueued work (the in-process runner waits)
_ENQUEUED = "lti_tool_jobs_enqueued"


def enqueue(db: Session, kind: str, payload: dict[str, Any], *, key: str,
            run_after: datetime | None = None, platform_id: int | None = None,
            max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> int | None:
    """Store a job in the caller's transaction; the caller commits.

    `key` is the idempotency key: a job with that key already stored (whatever its status)
    makes this a no-op that returns None; otherwise the new job's id.
    """
    if not _KIND.match(kind):
        raise ValueError(f"job kind {kind!r} is not a dotted lower-case name")
    if not key or len(key) > 255:
        raise ValueError("a job needs a key of 1-255 characters")
    due = run_after or utcnow()
    values: dict[str, Any] = {
              "kind": kind, "key": key, "payload": payload, "platform_id": platform_id,
              "status": "waiting", "attempts": 0, "max_attempts": max_attempts,
              "run_after": due, "last_error": "",
              "request_id": REQUEST_ID.get(), "created_at": utcnow(), "updated_at": utcnow()}
    db.flush()
    dialect = db.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Job)
    job_id = db.scalar(insert.values(**values)
                       .on_conflict_do_nothing(index_elements=["key"]).returning(Job.id))
    if job_id is None:
        return None
    if dialect == "postgresql":
        defer_on_connection(db, job_id, due)
    db.info[_ENQUEUED] = True
    return job_id


def defer_on_connection(db: Session, job_id: int, run_after: datetime | None) -> None:
    """Hand outbox row `job_id` to procrastinate in the session's own transaction.

    The queueing lock `job:<id>` keeps at most one waiting procrastinate job per outbox row
    (a second hand-over while one waits is dropped).
    """
    from procrastinate import exceptions, jobs, manager
    from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

    connection: Any = db.connection().connection.driver_connection
    job = jobs.Job(id=None, queue=QUEUE, lock=None, queueing_lock=f"job:{job_id}",
                   task_name=RUN_TASK, task_kwargs={"job_id": job_id},
                   scheduled_at=run_after if run_after and run_after > utcnow() else None)
    try:
        # psycopg's own savepoint: the statement goes through the driver connection, which
        # SQLAlchemy's savepoints do not see.
        with connection.transaction():
            manager.JobManager(SyncPsycopgConnector()).defer_job(job, connection=connection)
    except exceptions.AlreadyEnqueued:
        pass


def find(db: Session, key: str) -> Job | None:
    return db.scalar(select(Job).where(Job.key == key))


@event.listens_for(Session, "after_commit")
def _wake_runner(session: Session) -> None:
    if session.info.pop(_ENQUEUED, False):
        WAKE.set()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_ENQUEUED, None)
