"""Models of the evaluation area: mappings, tool rubric scores, decisions, attempts, evidence.

Every row belongs to one platform through its offering (and `platform_id` is repeated where
queries scope by it). Rules that must hold under concurrency are constraints here:
one decision per (person, offering); at most two attempts per decision, numbered 1 and 2 (the
one re-evaluation of Art. 9/3); one evidence record per (platform, seq) so the chain cannot fork.

Evidence chains are kept per platform registration: one institution's archive verifies and
exports on its own, and removing a registration never breaks another's chain.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.domain.decisions import window_open
from lti_tool.store.db import Base, UTCDateTime, utcnow
from lti_tool.store.models.catalogue import DecimalText
from lti_tool.store.models.windows import open_window

PERSON_FK = "person.id"
OFFERING_FK = "offering.id"


class OutcomeMapping(Base):
    """One saved version of an offering's mapping for one attempt (1, or 2 = re-evaluation).

    Versions are never edited: saving creates the next version, and decisions name the version
    they used. Attempt 2 may have its own sources (a resubmission item); without one it reuses
    the attempt-1 mapping.
    """

    __tablename__ = "outcome_mapping"
    __table_args__ = (
        UniqueConstraint("offering_id", "attempt_no", "version"),
        CheckConstraint("attempt_no IN (1, 2)", name="attempt_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    offering_id: Mapped[int] = mapped_column(ForeignKey(OFFERING_FK, ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer, default=1)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey(PERSON_FK, ondelete="SET NULL"), nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")

    sources: Mapped[list[MappingSource]] = relationship(
        back_populates="mapping", cascade="all, delete-orphan", order_by="MappingSource.id")


class MappingSource(Base):
    """One weighted source of one LO in a mapping version."""

    __tablename__ = "mapping_source"
    __table_args__ = (UniqueConstraint("mapping_id", "outcome_code", "kind", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mapping_id: Mapped[int] = mapped_column(ForeignKey("outcome_mapping.id", ondelete="CASCADE"))
    outcome_code: Mapped[str] = mapped_column(String(50))
    # grade_item | lms_rubric | tool_rubric (see lti_tool.domain.evaluation.SOURCE_KINDS)
    kind: Mapped[str] = mapped_column(String(20))
    # GradeItem.id / LmsRubricCriterion.id as text; the LO code for tool rubric levels.
    ref: Mapped[str] = mapped_column(String(100))
    weight: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(1))

    mapping: Mapped[OutcomeMapping] = relationship(back_populates="sources")


class ToolRubricScore(Base):
    """A rubric level an instructor gives a learner for one LO in the tool."""

    __tablename__ = "tool_rubric_score"
    __table_args__ = (UniqueConstraint("offering_id", "person_id", "outcome_code", "attempt_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    offering_id: Mapped[int] = mapped_column(ForeignKey(OFFERING_FK, ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey(PERSON_FK, ondelete="CASCADE"))
    outcome_code: Mapped[str] = mapped_column(String(50))
    attempt_no: Mapped[int] = mapped_column(Integer, default=1)
    level_code: Mapped[str] = mapped_column(String(50))
    comment: Mapped[str] = mapped_column(Text, default="")
    scored_by: Mapped[int | None] = mapped_column(
        ForeignKey(PERSON_FK, ondelete="SET NULL"), nullable=True)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Decision(Base):
    """Where one learner stands in one offering (see lti_tool.domain.decisions)."""

    __tablename__ = "decision"
    __table_args__ = (
        UniqueConstraint("person_id", "offering_id"),
        CheckConstraint("reevaluations_used IN (0, 1)", name="reevaluations_used"),
        Index("ix_decision_offering_status", "offering_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # RESTRICT: a decision is evidence; its registration, offering and learner are disabled or
    # erased (pseudonymised), never deleted from under it.
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="RESTRICT"))
    offering_id: Mapped[int] = mapped_column(ForeignKey(OFFERING_FK, ondelete="RESTRICT"))
    person_id: Mapped[int] = mapped_column(ForeignKey(PERSON_FK, ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(30), default="in_progress")
    reevaluations_used: Mapped[int] = mapped_column(Integer, default=0)
    # Latest evaluation, for pages: {code: {status, level, percent, ...}}.
    outcomes: Mapped[dict] = mapped_column(JSON, default=dict)
    share_attained: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(0))
    mapping_id: Mapped[int | None] = mapped_column(
        ForeignKey("outcome_mapping.id", ondelete="SET NULL"), nullable=True)
    # Digest of the marks behind the latest evaluation: a change after a pass raises a flag.
    inputs_digest: Mapped[str] = mapped_column(String(64), default="")
    passed_via: Mapped[str | None] = mapped_column(String(30), nullable=True)
    passed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="decision", cascade="all, delete-orphan", order_by="Attempt.number")


def _attempt_open(attempt: Attempt, now: datetime) -> bool:
    return window_open(attempt.closes_at, now)


def _attempt_open_sql(cls: type[Attempt], now: datetime) -> ColumnElement[bool]:
    return open_window(cls.closes_at, now)


class Attempt(Base):
    """Attempt 1 is the offering's window; attempt 2 is the one re-evaluation, own close date."""

    __tablename__ = "attempt"
    __table_args__ = (
        UniqueConstraint("decision_id", "number"),
        CheckConstraint("number IN (1, 2)", name="number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decision.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    granted_by: Mapped[int | None] = mapped_column(
        ForeignKey(PERSON_FK, ondelete="SET NULL"), nullable=True)
    granted_via: Mapped[str] = mapped_column(String(30), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    # The outcome results at this attempt's close: attempt 2 carries the attained ones over.
    results: Mapped[dict] = mapped_column(JSON, default=dict)

    decision: Mapped[Decision] = relationship(back_populates="attempts")

    # The attempt's own window (a re-evaluation closes at its date), as Offering.is_open.
    is_open = hybrid_method(_attempt_open, _attempt_open_sql)


class ReevaluationRequest(Base):
    """A learner's request for their one re-evaluation (one request per decision)."""

    __tablename__ = "reevaluation_request"
    __table_args__ = (UniqueConstraint("decision_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decision.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey(PERSON_FK, ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text, default="")
    # pending | granted
    status: Mapped[str] = mapped_column(String(20), default="pending")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    handled_by: Mapped[int | None] = mapped_column(
        ForeignKey(PERSON_FK, ondelete="SET NULL"), nullable=True)


class ReviewFlag(Base):
    """A case for the instructor: marks changed after a pass (never revokes by itself)."""

    __tablename__ = "review_flag"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decision.id", ondelete="CASCADE"))
    offering_id: Mapped[int] = mapped_column(ForeignKey(OFFERING_FK, ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey(PERSON_FK, ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(500))
    inputs_digest: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(
        ForeignKey(PERSON_FK, ondelete="SET NULL"), nullable=True)


class GradePassback(Base):
    """The latest score to send to the LMS for a decision, and how sending went.

    Written in the decision's transaction and sent afterwards, so an LMS outage never undoes a
    decision; failed sends stay here with their error and are retried.
    """

    __tablename__ = "grade_passback"
    __table_args__ = (UniqueConstraint("decision_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decision.id", ondelete="CASCADE"))
    score_given: Mapped[Decimal] = mapped_column(DecimalText)
    score_maximum: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(100))
    activity_progress: Mapped[str] = mapped_column(String(20))
    grading_progress: Mapped[str] = mapped_column(String(20))
    # pending | sent | failed | skipped (no AGS for the context)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    tries: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OfferingLineItem(Base):
    """The AGS line item "Micro-credential: <title>" the tool created for an offering."""

    __tablename__ = "offering_line_item"
    __table_args__ = (UniqueConstraint("offering_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    offering_id: Mapped[int] = mapped_column(ForeignKey(OFFERING_FK, ondelete="CASCADE"))
    lineitem_url: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvidenceHead(Base):
    """The end of one platform's evidence chain; appending locks this row (no forks)."""

    __tablename__ = "evidence_head"

    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platform.id", ondelete="RESTRICT"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class EvidenceRecord(Base):
    """An immutable snapshot of a decision's inputs, chained by SHA-256 (Art. 9/4).

    `payload` is the canonical JSON exactly as hashed (`content_hash` is its SHA-256); the
    link hash covers the previous hash, `seq`, `event`, `person_id`, `offering_id` and
    `content_hash` (see lti_tool.domain.evidence). A retention purge removes the payload only
    (`purged_by` names the purge record), so the chain still verifies. The ORM refuses updates
    and deletes; the database refuses to delete what a record refers to (RESTRICT).
    """

    __tablename__ = "evidence_record"
    __table_args__ = (
        UniqueConstraint("platform_id", "seq"),
        Index("ix_evidence_record_person_offering", "person_id", "offering_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(Integer)
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("decision.id", ondelete="RESTRICT"), nullable=True)
    offering_id: Mapped[int | None] = mapped_column(
        ForeignKey(OFFERING_FK, ondelete="RESTRICT"), nullable=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey(PERSON_FK, ondelete="RESTRICT"), nullable=True)
    event: Mapped[str] = mapped_column(String(50))
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The seq of the purge record (same chain) that removed this record's payload.
    purged_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class EvidenceCheckpoint(Base):
    """A signed statement of one chain's head: number, seq, head hash, previous checkpoint.

    `statement` is canonical JSON; `jws` is its compact JWS (EdDSA, the institution's badge
    key `kid`). Checkpoints are numbered 1, 2, ... per chain and each names the hash of the
    one before, so a removed checkpoint shows as a gap (see lti_tool.domain.evidence).
    """

    __tablename__ = "evidence_checkpoint"
    __table_args__ = (UniqueConstraint("platform_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="RESTRICT"))
    number: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    # evaluation | daily | purge | erasure | manual | commit
    reason: Mapped[str] = mapped_column(String(30))
    kid: Mapped[str] = mapped_column(String(100))
    statement: Mapped[str] = mapped_column(Text)
    statement_hash: Mapped[str] = mapped_column(String(64), unique=True)
    jws: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImmutableEvidence(RuntimeError):
    """Raised when code tries to change or delete an archived evidence record."""


def _refuse_change(_mapper, _connection, target: EvidenceRecord | EvidenceCheckpoint) -> None:
    raise ImmutableEvidence(f"{target.__tablename__} {target.id} is immutable: it cannot be "
                            "changed or deleted")


for _model in (EvidenceRecord, EvidenceCheckpoint):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)
