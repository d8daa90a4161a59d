"""The job outbox: every piece of background work, stored with the change that calls for it.

A row is written by `lti_tool.jobs.enqueue` inside the caller's transaction, so a job exists
exactly when the change that asked for it was committed. Its `key` is the idempotency key:
enqueueing the same key again is a no-op. Workers claim a row with a conditional update (one
winner), renew its lease while it runs, and record the outcome on it; a worker killed mid-job
leaves a lease that expires, and the job is taken again.

Statuses: `waiting` (due at `run_after`) -> `running` -> `done` | back to `waiting` with a
backoff after a failure | `failed` after `max_attempts` (the Office sees the reason and may retry).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.store.db import Base, UTCDateTime, utcnow

WAITING, RUNNING, DONE, FAILED = "waiting", "running", "done", "failed"
STATUSES = (WAITING, RUNNING, DONE, FAILED)


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_due", "status", "run_after"),
        Index("ix_job_platform_status", "platform_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    # The registration the work is for (None: installation-wide work such as lapsing).
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default=WAITING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # The request that asked for the work, so its log lines follow it into the job.
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
