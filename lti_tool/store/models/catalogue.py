"""Micro-credentials, their versions (each a full Design Plan), outcomes, offerings, pathways.

A micro-credential's content lives in versions: editing an approved one makes a new version,
and everything issued keeps pointing at the version it was issued under.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    type_coerce,
)
from sqlalchemy.ext.hybrid import hybrid_method, hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from lti_tool.domain.decisions import window_open
from lti_tool.store.db import Base, UTCDateTime, utcnow
from lti_tool.store.models.windows import open_window


class DecimalText(TypeDecorator):
    """An exact decimal stored as its text: SQLite has no exact numeric type."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return self.written(value)

    @staticmethod
    def written(value: Any) -> str | None:
        """The text a value is stored as (the sync compares fetched marks in this form)."""
        if value is None:
            return None
        return str(Decimal(value))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        try:
            return Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal in the database: {value!r}") from exc


class MicroCredential(Base):
    """The stable identity of a micro-credential: a code unique within one institution.

    The catalogue belongs to the institution, so one catalogue serves its Moodle and its
    Canvas; `platform_id` only records the registration whose Office created it.
    """

    __tablename__ = "micro_credential"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="RESTRICT"), index=True)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="SET NULL"), nullable=True, index=True)
    code: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[MicroCredentialVersion]] = relationship(
        back_populates="micro_credential", order_by="MicroCredentialVersion.version",
        cascade="all, delete-orphan")

    @property
    def head(self) -> MicroCredentialVersion:
        """The newest version: the one the Office edits and acts on."""
        return self.versions[-1]


class MicroCredentialVersion(Base):
    """One version of the Design Plan, with its own status in the approval workflow."""

    __tablename__ = "micro_credential_version"
    __table_args__ = (UniqueConstraint("micro_credential_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Always the micro-credential's institution (denormalised for scoped queries).
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="RESTRICT"), index=True)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="SET NULL"), nullable=True, index=True)
    micro_credential_id: Mapped[int] = mapped_column(
        ForeignKey("micro_credential.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    # draft | in_review | approved | lapsed | retired (lti_tool.domain.catalogue.STATUSES)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)

    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10), default="en")
    image: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    target_group: Mapped[str] = mapped_column(Text, default="")
    tqf_level: Mapped[int] = mapped_column(Integer)
    eqf_level: Mapped[int] = mapped_column(Integer)
    workload_hours: Mapped[Decimal] = mapped_column(DecimalText)
    ects: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    teaching_methods: Mapped[list] = mapped_column(JSON, default=list)
    assessment_methods: Mapped[list] = mapped_column(JSON, default=list)
    content_plan: Mapped[str] = mapped_column(Text, default="")
    stackability: Mapped[str] = mapped_column(Text, default="")
    recognition: Mapped[str] = mapped_column(Text, default="")
    quality_assurance: Mapped[str] = mapped_column(Text, default="")
    # Badge metadata (Art. 4/1-c, Art. 11/2): the credential's fieldOfStudy with an optional
    # ISCED-F 2013 code, and the EU form of participation online | in_person | blended
    # (Art. 6/2-e). Empty only on rows written before these fields existed.
    field_of_study: Mapped[str] = mapped_column(String(255), default="")
    isced_f_code: Mapped[str] = mapped_column(String(4), default="")
    participation_form: Mapped[str] = mapped_column(String(20), default="")
    # The other Annex I elements (Council Recommendation 2022/C 243/02): prerequisites,
    # supervision and identity verification, QF-EHEA cycle, learning setting, region,
    # co-awarding bodies ([{"name", "country", "legal_identifier", "url"}]), further
    # information and the overall result mode (lti_tool.domain.catalogue). Empty on plans
    # written before they existed (migration 0006_eu_elements).
    prerequisites: Mapped[str] = mapped_column(Text, default="")
    supervision: Mapped[str] = mapped_column(String(30), default="")
    qf_ehea_cycle: Mapped[str] = mapped_column(String(10), default="")
    learning_setting: Mapped[str] = mapped_column(String(20), default="")
    region: Mapped[str] = mapped_column(String(100), default="")
    co_awarding_bodies: Mapped[list] = mapped_column(JSON, default=list)
    further_information: Mapped[str] = mapped_column(Text, default="")
    overall_result: Mapped[str] = mapped_column(String(20), default="")

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    approved_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), nullable=True)
    revalidated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revalidated_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), nullable=True)
    revalidation_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True,
                                                              index=True)
    lapsed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    micro_credential: Mapped[MicroCredential] = relationship(back_populates="versions")
    outcomes: Mapped[list[LearningOutcome]] = relationship(
        back_populates="version", order_by="LearningOutcome.position",
        cascade="all, delete-orphan")
    components: Mapped[list[PathwayComponent]] = relationship(
        back_populates="version", order_by="PathwayComponent.position",
        cascade="all, delete-orphan", foreign_keys="PathwayComponent.version_id")
    events: Mapped[list[ApprovalEvent]] = relationship(
        back_populates="version", order_by="ApprovalEvent.id", cascade="all, delete-orphan")

    @property
    def code(self) -> str:
        return self.micro_credential.code


class LearningOutcome(Base):
    """An LO of one version; rubric levels as JSON with bounds as decimal strings."""

    __tablename__ = "learning_outcome"
    __table_args__ = (UniqueConstraint("version_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="SET NULL"), nullable=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("micro_credential_version.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40))
    statement: Mapped[str] = mapped_column(Text)
    # knowledge | skill | competence
    domain: Mapped[str] = mapped_column(String(20))
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    # [{"code", "label", "descriptor", "lower_bound": "70"}], ordered lowest first
    levels: Mapped[list] = mapped_column(JSON)
    threshold: Mapped[str] = mapped_column(String(40))

    version: Mapped[MicroCredentialVersion] = relationship(back_populates="outcomes")


class PathwayComponent(Base):
    """One micro-credential a pathway version requires (stackability, Art. 6/2-f,g)."""

    __tablename__ = "pathway_component"
    __table_args__ = (UniqueConstraint("version_id", "required_micro_credential_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="SET NULL"), nullable=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("micro_credential_version.id", ondelete="CASCADE"), index=True)
    required_micro_credential_id: Mapped[int] = mapped_column(
        ForeignKey("micro_credential.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    version: Mapped[MicroCredentialVersion] = relationship(
        back_populates="components", foreign_keys=[version_id])
    required: Mapped[MicroCredential] = relationship()


class ApprovalEvent(Base):
    """The approval history: who moved which version from what status to what, and when."""

    __tablename__ = "approval_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="SET NULL"), nullable=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("micro_credential_version.id", ondelete="CASCADE"), index=True)
    # create | edit | submit | reject | approve | revalidate | lapse | retire
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str] = mapped_column(String(20))
    actor_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), nullable=True)
    # A person's name, or "cli" / "scheduler" when no person acted.
    actor_label: Mapped[str] = mapped_column(String(255), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")

    version: Mapped[MicroCredentialVersion] = relationship(back_populates="events")


def _offering_open(offering: Offering, now: datetime) -> bool:
    return window_open(offering.window_closes_at, now, finalized_at=offering.finalized_at)


def _offering_open_sql(cls: type[Offering], now: datetime) -> ColumnElement[bool]:
    return open_window(cls.window_closes_at, now, cls.finalized_at)


class Offering(Base):
    """A micro-credential version run in one course context (placed by deep linking)."""

    __tablename__ = "offering"
    __table_args__ = (UniqueConstraint("context_id", "mc_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"),
                                             index=True)
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"),
                                            index=True)
    mc_version_id: Mapped[int] = mapped_column(
        ForeignKey("micro_credential_version.id", ondelete="RESTRICT"), index=True)
    # Set by the first launch of the placed link (ResourceLink.custom["offering_id"]).
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_link.id", ondelete="SET NULL"), nullable=True)
    window_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # instructor | learner_request | automatic
    reevaluation_policy: Mapped[str] = mapped_column(String(20), default="instructor")
    reevaluation_window_days: Mapped[int] = mapped_column(Integer, default=14)
    # Ids of lti_tool.store.models.grades.GradeItem rows that belong to an embedded MC.
    grade_item_ids: Mapped[list] = mapped_column(JSON, default=list)
    # The instructor's choice: results go to a gradebook column the tool creates in the LMS.
    grade_passback: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    mc_version: Mapped[MicroCredentialVersion] = relationship()

    # offering.is_open(now) on a row, Offering.is_open(now) in a query: the assessment window
    # rule (`domain.decisions.window_open`) and its one SQL form (`store.models.windows`).
    is_open = hybrid_method(_offering_open, _offering_open_sql)

    @hybrid_property
    def counted_at(self) -> datetime:
        """The moment an offering counts at in the annual report: its window's close, else
        its finalizing, else its creation (one rule for the report's SQL and its Python)."""
        return self.window_closes_at or self.finalized_at or self.created_at

    @counted_at.inplace.expression
    @classmethod
    def _counted_at_sql(cls) -> ColumnElement[datetime]:
        return type_coerce(func.coalesce(cls.window_closes_at, cls.finalized_at, cls.created_at),
                           UTCDateTime)
