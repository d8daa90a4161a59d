"""Asking for a sync of one course (after an instructor's launch, or "Sync now"): a durable
`grades.sync` job stored in the caller's transaction (outbox), run by a worker.

The job's idempotency key is `grades.sync:<context>:request:<generation>`, where the generation
is the one the course's progress row (`sync_progress`) records for its latest requested sync:
while that sync's job waits or runs, asking again stores nothing; requests made at the same
moment (a double click, two web nodes) compute the same key, so the outbox stores one job.
Once the job has ended, the next request takes the next generation.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.grades.sync.lease import lease_holder
from lti_tool.grades.sync.progress import mark_waiting
from lti_tool.jobs import enqueue
from lti_tool.store.models.core import Context
from lti_tool.store.models.grades import SyncProgress
from lti_tool.store.models.jobs import DONE, FAILED, Job

SYNC_JOB = "grades.sync"


def sync_key(context_id: int, generation: int) -> str:
    return f"{SYNC_JOB}:{context_id}:request:{generation}"


def request_sync(db: Session, context: Context, trigger: str) -> int | None:
    """Store a sync of `context` in the caller's transaction (the caller commits); the new
    job's id, or None when a sync of the course already waits or runs."""
    if lease_holder(db, context.id) is not None:
        return None  # a sync runs (scheduled, or from the command line): it is enough
    row = db.get(SyncProgress, context.id)
    generation = row.generation if row is not None else 0
    if row is not None and row.job_id is not None:
        status = db.scalar(select(Job.status).where(Job.id == row.job_id))
        if status is not None and status not in (DONE, FAILED):
            return None  # the last requested sync waits or runs
    job_id = enqueue(db, SYNC_JOB, {"context_id": context.id, "trigger": trigger},
                     key=sync_key(context.id, generation + 1), platform_id=context.platform_id)
    if job_id is not None:
        mark_waiting(db, context.id, job_id, generation + 1)
    return job_id
