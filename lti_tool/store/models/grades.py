"""Models of the gradebook sync: items, scores, LMS rubric criteria and assessments, sync runs
and the per-context sync lease.

Every row belongs to one platform through its context. A score is keyed by (item, person), so
a repeated sync updates in place; rows are written only when a value changed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.store.db import Base, UTCDateTime, utcnow
from lti_tool.store.models.catalogue import DecimalText

GRADE_SOURCES = ("ags", "moodle_ws", "canvas")
# item: a gradebook column; competency / outcome: a Moodle competency or Canvas outcome.
GRADE_ITEM_KINDS = ("item", "competency", "outcome")
SYNC_TRIGGERS = ("launch", "schedule", "manual", "cli")
SYNC_STATUSES = ("running", "succeeded", "failed", "skipped")


class GradeItem(Base):
    """A gradebook column of a course as the LMS reports it."""

    __tablename__ = "grade_item"
    __table_args__ = (UniqueConstraint("context_id", "source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"),
                                            index=True)
    source: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20), default="item")
    # AGS line item URL, Moodle grade item id, Canvas assignment id.
    external_id: Mapped[str] = mapped_column(String(700))
    label: Mapped[str] = mapped_column(String(500), default="")
    maximum: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    category: Mapped[str] = mapped_column(String(500), default="")
    resource_link_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Moodle course module / Canvas assignment, where rubric data hangs.
    lms_activity_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # False once the LMS stops listing the item; its scores stay for the evidence archive.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    lms_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Score(Base):
    """One learner's mark on one item; `fetched_at` is when the tool first saw this value."""

    __tablename__ = "score"
    __table_args__ = (UniqueConstraint("grade_item_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique key (grade_item_id, person_id) serves lookups by item.
    grade_item_id: Mapped[int] = mapped_column(
        ForeignKey("grade_item.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"),
                                           index=True)
    # None: the LMS lists the learner but holds no grade (or the grade was removed).
    score: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    maximum: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    source: Mapped[str] = mapped_column(String(20))
    lms_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LmsRubricCriterion(Base):
    """A criterion of an LMS rubric (Moodle advanced grading, Canvas assignment rubric)."""

    __tablename__ = "lms_rubric_criterion"
    __table_args__ = (UniqueConstraint("grade_item_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grade_item_id: Mapped[int] = mapped_column(
        ForeignKey("grade_item.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    max_points: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    # [{"id": "...", "points": "4", "description": "..."}], lowest first.
    levels: Mapped[list] = mapped_column(JSON, default=list)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class LmsRubricAssessment(Base):
    """The level (and points) a grader chose for one learner on one criterion."""

    __tablename__ = "lms_rubric_assessment"
    __table_args__ = (UniqueConstraint("criterion_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    criterion_id: Mapped[int] = mapped_column(
        ForeignKey("lms_rubric_criterion.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"),
                                           index=True)
    points: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    level_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lms_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncRun(Base):
    """One sync of one context: when, why, what it saw and wrote, and any error in plain words."""

    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"),
                                            index=True)
    trigger: Mapped[str] = mapped_column(String(20), default="manual")
    status: Mapped[str] = mapped_column(String(20), default="running")
    sources: Mapped[list] = mapped_column(JSON, default=list)
    incremental: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    items_seen: Mapped[int] = mapped_column(Integer, default=0)
    scores_seen: Mapped[int] = mapped_column(Integer, default=0)
    members_seen: Mapped[int] = mapped_column(Integer, default=0)
    rows_written: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Sources or parts of them that could not be read this time (their stored marks are kept).
    warnings: Mapped[list] = mapped_column(JSON, default=list)


class SyncLock(Base):
    """A lease: at most one sync per context across processes and machines.

    The primary key makes a second INSERT fail on every backend; an expired lease may be taken
    over with a conditional UPDATE, so a crashed worker never blocks a context for ever.
    """

    __tablename__ = "sync_lock"

    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SyncProgress(Base):
    """What the course's sync page shows while a sync waits or runs, readable on every node.

    One row per context. The transaction that stores a requested sync's job (`grades.sync`)
    sets `waiting` and the job's id; the sync itself writes `running` and its step counts from
    a short transaction of its own (never from the sync's, which commits only at the end), and
    `succeeded` or `failed` when it ends. `generation` counts the requested syncs: the next
    request's idempotency key is built from it, so requests made at once (a double click, two
    nodes) store one job.
    """

    __tablename__ = "sync_progress"

    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="waiting")
    phase: Mapped[str] = mapped_column(String(100), default="")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
