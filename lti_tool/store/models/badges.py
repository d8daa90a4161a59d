"""Issued credentials, held passes and revocation status lists.

Exactly one credential per learner and micro-credential version is a database constraint on
(person_id, mc_version_id): revocation is a status on that row, never a delete, so concurrent
issuers race on the constraint and exactly one wins.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.store.db import Base, UTCDateTime, utcnow

CREDENTIAL_STATUSES = ("active", "revoked")


class StatusList(Base):
    """A W3C Bitstring Status List (purpose revocation) and its signed credential."""

    __tablename__ = "badge_status_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    # The institution whose issuer signs the list (its credentials point at it).
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution.id", ondelete="RESTRICT"), nullable=True, index=True)
    purpose: Mapped[str] = mapped_column(String(20), default="revocation")
    size: Mapped[int] = mapped_column(Integer)
    # The raw bitstring, bit 0 the most significant bit of byte 0 (as the spec orders it).
    bits: Mapped[bytes] = mapped_column(LargeBinary)
    # The signed BitstringStatusListCredential as served, re-signed after every change.
    signed_credential: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Credential(Base):
    """An issued Open Badges 3.0 credential, stored exactly as signed."""

    __tablename__ = "credential"
    __table_args__ = (
        UniqueConstraint("person_id", "mc_version_id"),
        UniqueConstraint("status_list_id", "status_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    # RESTRICT: an issued credential stays resolvable and revocable; its registration, learner
    # and offering are disabled or pseudonymised, never deleted from under it.
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="RESTRICT"),
                                             index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"),
                                           index=True)
    mc_version_id: Mapped[int] = mapped_column(
        ForeignKey("micro_credential_version.id", ondelete="RESTRICT"), index=True)
    offering_id: Mapped[int | None] = mapped_column(
        ForeignKey("offering.id", ondelete="RESTRICT"), nullable=True)
    via_pathway: Mapped[bool] = mapped_column(Boolean, default=False)
    # active | revoked
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    passed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome_levels: Mapped[dict] = mapped_column(JSON, default=dict)
    status_list_id: Mapped[int] = mapped_column(
        ForeignKey("badge_status_list.id", ondelete="RESTRICT"))
    status_index: Mapped[int] = mapped_column(Integer)
    # The signed JSON-LD credential (text, so the bytes served never change) and its VC-JWT.
    document: Mapped[str] = mapped_column(Text, default="")
    jwt: Mapped[str] = mapped_column(Text, default="")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str] = mapped_column(Text, default="")
    revoked_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="RESTRICT"), nullable=True)


class HeldPass(Base):
    """A pass recorded while the micro-credential was not approved; issued after revalidation."""

    __tablename__ = "held_pass"
    __table_args__ = (UniqueConstraint("person_id", "mc_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"),
                                             index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    mc_version_id: Mapped[int] = mapped_column(
        ForeignKey("micro_credential_version.id", ondelete="CASCADE"), index=True)
    offering_id: Mapped[int | None] = mapped_column(
        ForeignKey("offering.id", ondelete="SET NULL"), nullable=True)
    outcome_levels: Mapped[dict] = mapped_column(JSON, default=dict)
    passed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
