"""The sync lease: one sync of a context at a time, across threads, processes and machines.

A lease row in `sync_lock` keeps a second sync of the same context from running at the same
time; it works the same on SQLite and PostgreSQL because it rests on the primary key and a
conditional UPDATE, not on advisory locks. The running sync renews it from inside its
transaction (`lti_tool.grades.sync.writer.Writer.renew`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from lti_tool.errors import Conflict, ToolError
from lti_tool.store.db import utcnow
from lti_tool.store.models.grades import SyncLock

LEASE = timedelta(minutes=10)
# Renew the lease at most this often while a sync is writing.
RENEW_EVERY = timedelta(seconds=30)


class SyncBusy(Conflict):
    """Another sync of this context holds the lease."""

    code = "sync_running"


class LeaseLost(ToolError):
    status = 409
    code = "sync_lease_lost"


def acquire_lease(factory: sessionmaker[Session], context_id: int,
                  lease: timedelta = LEASE, holder: str = "") -> str | None:
    """Take the context's sync lease; the owner token, or None when someone else holds it.

    `holder` names who asks (a durable job: `job-<id>-`); a live lease of the same holder is
    its own earlier attempt, which the job runner only retries once that attempt is over or
    its worker stopped renewing the job (killed): it is taken over at once instead of waiting
    out the ten minutes. A sync that was in fact still alive loses the lease at its next renewal
    (`LeaseLost`) and rolls back."""
    owner = holder + uuid.uuid4().hex
    now = utcnow()
    with factory() as db:
        try:
            held = db.get(SyncLock, context_id)
            if held is not None and holder and held.owner.startswith(holder):
                taken = db.execute(
                    update(SyncLock)
                    .where(SyncLock.context_id == context_id, SyncLock.owner == held.owner)
                    .values(owner=owner, acquired_at=now, expires_at=now + lease))
                db.commit()
                return owner if taken.rowcount == 1 else None
            if held is not None and held.expires_at > now:
                return None  # decided on a plain read: never wait behind a running sync
            if held is None:
                db.add(SyncLock(context_id=context_id, owner=owner, acquired_at=now,
                                expires_at=now + lease))
                db.commit()
                return owner
            taken = db.execute(
                update(SyncLock)
                .where(SyncLock.context_id == context_id, SyncLock.expires_at <= now)
                .values(owner=owner, acquired_at=now, expires_at=now + lease)
            )
            db.commit()
            return owner if taken.rowcount == 1 else None
        except (IntegrityError, OperationalError):
            # Lost the race for the INSERT, or SQLite is busy with another writer's sync.
            db.rollback()
            return None


def release_lease(factory: sessionmaker[Session], context_id: int, owner: str) -> None:
    with factory() as db:
        db.execute(delete(SyncLock).where(SyncLock.context_id == context_id,
                                          SyncLock.owner == owner))
        db.commit()


def lease_holder(db: Session, context_id: int) -> SyncLock | None:
    held = db.get(SyncLock, context_id)
    return held if held is not None and held.expires_at > utcnow() else None
