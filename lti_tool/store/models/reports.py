"""The quality cycle: survey questions and answers, follow-ups, feedback, improvement actions.

Directive Art. 10 (the Annual Quality Assurance Report and its improvement action plan) and
Art. 12/3-f (feedback from students, faculty, graduates, employers and external stakeholders).
Every row names its institution (`institution_id`): one installation hosts several
institutions and an Office sees only its own. What belongs to the institution as a whole (its
survey questions, the stakeholder links and their answers, free-text comments, the improvement
plan) is scoped by the institution alone; what a learner or instructor wrote through one LMS
(satisfaction answers, consent, follow-ups, reflections) keeps its registration (`platform_id`)
as well, which always belongs to the same institution.

Free-text answers are kept apart from the person who wrote them (`SurveyComment` has no person
column), so no query, export or report can ever attribute one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.store.db import Base, UTCDateTime, utcnow

PLATFORM_FK = "platform.id"
PERSON_FK = "person.id"
MC_FK = "micro_credential.id"
INSTITUTION_FK = "institution.id"


def institution_column() -> Mapped[int]:
    return mapped_column(ForeignKey(INSTITUTION_FK, ondelete="RESTRICT"), index=True)


def created_through() -> Mapped[int | None]:
    """The registration through which the Office made the row (kept if it goes away)."""
    return mapped_column(ForeignKey(PLATFORM_FK, ondelete="SET NULL"), nullable=True,
                         index=True)


class SurveyQuestion(Base):
    """One item of an institution's satisfaction survey (Likert 1-5, or the free text)."""

    __tablename__ = "survey_question"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    position: Mapped[int] = mapped_column(Integer, default=0)
    code: Mapped[str] = mapped_column(String(20))
    # likert | text (lti_tool.domain.surveys.QUESTION_KINDS)
    kind: Mapped[str] = mapped_column(String(10))
    text_en: Mapped[str] = mapped_column(String(300))
    text_tr: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SurveyResponse(Base):
    """A learner's satisfaction answer (or skip) for one offering: one per learner and offering."""

    __tablename__ = "survey_response"
    __table_args__ = (UniqueConstraint("person_id", "offering_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    platform_id: Mapped[int] = mapped_column(ForeignKey(PLATFORM_FK, ondelete="CASCADE"),
                                             index=True)
    offering_id: Mapped[int] = mapped_column(ForeignKey("offering.id", ondelete="CASCADE"),
                                             index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey(PERSON_FK, ondelete="CASCADE"))
    # claimed | not_passed (lti_tool.domain.surveys TRIGGER_*)
    trigger: Mapped[str] = mapped_column(String(20))
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    # {question code: 1..5}
    ratings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SurveyComment(Base):
    """A free-text answer, stored without its author (never attributed)."""

    __tablename__ = "survey_comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    platform_id: Mapped[int] = mapped_column(ForeignKey(PLATFORM_FK, ondelete="CASCADE"),
                                             index=True)
    micro_credential_id: Mapped[int] = mapped_column(ForeignKey(MC_FK, ondelete="CASCADE"),
                                                     index=True)
    year: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class ContactConsent(Base):
    """Whether a learner agreed to be e-mailed the employability follow-ups."""

    __tablename__ = "contact_consent"
    __table_args__ = (UniqueConstraint("person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    platform_id: Mapped[int] = mapped_column(ForeignKey(PLATFORM_FK, ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey(PERSON_FK, ondelete="CASCADE"))
    email_follow_ups: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FollowUp(Base):
    """An employability question 6 or 12 months after issuance, for one credential.

    `nonce` makes the signed e-mail link single-use: answering sets `answered_at`, and a link
    for an answered follow-up (or with another nonce) is refused.
    """

    __tablename__ = "follow_up"
    __table_args__ = (UniqueConstraint("credential_id", "months"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    platform_id: Mapped[int] = mapped_column(ForeignKey(PLATFORM_FK, ondelete="CASCADE"),
                                             index=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credential.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey(PERSON_FK, ondelete="CASCADE"),
                                           index=True)
    micro_credential_id: Mapped[int] = mapped_column(ForeignKey(MC_FK, ondelete="CASCADE"))
    months: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    email_error: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # [new_job, promotion, application, recognised_credit] or [not_yet]
    outcomes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InstructorReflection(Base):
    """An instructor's reflection on one offering: what worked, what to change."""

    __tablename__ = "instructor_reflection"
    __table_args__ = (UniqueConstraint("offering_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    platform_id: Mapped[int] = mapped_column(ForeignKey(PLATFORM_FK, ondelete="CASCADE"),
                                             index=True)
    offering_id: Mapped[int] = mapped_column(ForeignKey("offering.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey(PERSON_FK, ondelete="CASCADE"))
    worked: Mapped[str] = mapped_column(Text, default="")
    change: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class StakeholderLink(Base):
    """A public feedback link for one micro-credential that the Office hands out."""

    __tablename__ = "stakeholder_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    platform_id: Mapped[int | None] = created_through()
    micro_credential_id: Mapped[int] = mapped_column(ForeignKey(MC_FK, ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StakeholderFeedback(Base):
    """One answer given through a stakeholder link (no login, no name asked)."""

    __tablename__ = "stakeholder_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    platform_id: Mapped[int | None] = created_through()
    micro_credential_id: Mapped[int] = mapped_column(ForeignKey(MC_FK, ondelete="CASCADE"),
                                                     index=True)
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("stakeholder_link.id", ondelete="SET NULL"), nullable=True)
    role: Mapped[str] = mapped_column(String(20))
    themes: Mapped[list] = mapped_column(JSON, default=list)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImprovementAction(Base):
    """An action of the improvement plan (Art. 10/2, PDCA), linked to a finding of a report."""

    __tablename__ = "improvement_action"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = institution_column()
    platform_id: Mapped[int | None] = created_through()
    year: Mapped[int] = mapped_column(Integer)  # the report year the finding comes from
    micro_credential_id: Mapped[int | None] = mapped_column(
        ForeignKey(MC_FK, ondelete="SET NULL"), nullable=True)
    finding: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[datetime] = mapped_column(UTCDateTime)
    # planned | in_progress | done | dropped
    status: Mapped[str] = mapped_column(String(20), default="planned")
    result: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey(PERSON_FK, ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
