"""Surveys of the quality cycle: satisfaction, employability follow-ups, reflections, feedback.

Services over the store; the rules are in `lti_tool.domain.surveys`. Callers commit.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain import surveys as rules
from lti_tool.domain.errors import ValidationFailed
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.settings import Settings
from lti_tool.store.db import changed_rows, utcnow
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion, Offering
from lti_tool.store.models.core import Person
from lti_tool.store.models.evaluation import Decision
from lti_tool.store.models.reports import (
    ContactConsent,
    FollowUp,
    InstructorReflection,
    StakeholderFeedback,
    StakeholderLink,
    SurveyComment,
    SurveyQuestion,
    SurveyResponse,
)

log = logging.getLogger(__name__)
FOLLOW_UP_SALT = "lti-tool.follow-up"
NOT_PASSED = ("failed", "failed_final")


def _problems(exc: ValidationFailed) -> BadRequest:
    return BadRequest(str(exc), details={"problems": [str(p) for p in exc.problems]})


# --- Questions -----------------------------------------------------------------------------


def questions_of(db: Session, institution_id: int) -> list[rules.Question]:
    """The institution's satisfaction questions (the defaults until the Office edits them)."""
    rows = db.scalars(select(SurveyQuestion)
                      .where(SurveyQuestion.institution_id == institution_id)
                      .order_by(SurveyQuestion.position, SurveyQuestion.id)).all()
    if not rows:
        return list(rules.DEFAULT_QUESTIONS)
    return [rules.Question(r.code, r.kind, {"en": r.text_en, "tr": r.text_tr}) for r in rows]


def save_questions(db: Session, institution_id: int, questions: Sequence[rules.Question]
                   ) -> None:
    """Replace the institution's question set; every problem refused with 400, nothing
    stored on error."""
    problems = rules.question_problems(questions)
    if problems:
        raise _problems(ValidationFailed(problems))
    for row in db.scalars(select(SurveyQuestion)
                          .where(SurveyQuestion.institution_id == institution_id)):
        db.delete(row)
    db.flush()
    for position, q in enumerate(questions):
        db.add(SurveyQuestion(institution_id=institution_id, position=position, code=q.code,
                              kind=q.kind, text_en=q.text["en"].strip(),
                              text_tr=(q.text.get("tr") or "").strip()))
    db.flush()


# --- Satisfaction --------------------------------------------------------------------------


def survey_trigger(decision_status: str | None, accepted: bool) -> str | None:
    """Why this learner is asked about this offering now, or None (not yet asked)."""
    if accepted:
        return rules.TRIGGER_CLAIMED
    if decision_status in NOT_PASSED:
        return rules.TRIGGER_NOT_PASSED
    return None


def answered_offerings(db: Session, platform_id: int, person_id: int,
                       offering_ids: Sequence[int]) -> set[int]:
    if not offering_ids:
        return set()
    return set(db.scalars(select(SurveyResponse.offering_id).where(
        SurveyResponse.platform_id == platform_id, SurveyResponse.person_id == person_id,
        SurveyResponse.offering_id.in_(list(offering_ids)))))


def _offering_year(offering: Offering) -> int:
    return offering.counted_at.year


def record_satisfaction(db: Session, *, platform_id: int, person_id: int, offering_id: int,
                        trigger: str | None, form: Mapping[str, str], skipped: bool) -> None:
    """Store the learner's answer (or their skip) once; a second one is 409.

    `trigger` is what the caller established from the learner's own decision and credential;
    without one (the learner is not being asked) the answer is refused.
    """
    offering = db.scalar(select(Offering).where(Offering.id == offering_id,
                                                Offering.platform_id == platform_id))
    if offering is None:
        raise NotFound("This course has no such micro-credential offering.")
    if trigger is None:
        raise Conflict("This survey opens when you claim your badge or when the assessment "
                       "closes.")
    mc_id, institution_id = db.execute(
        select(MicroCredentialVersion.micro_credential_id, MicroCredentialVersion.institution_id)
        .where(MicroCredentialVersion.id == offering.mc_version_id)).one()
    questions = questions_of(db, institution_id)
    try:
        answer = rules.SatisfactionAnswer({}, "") if skipped else \
            rules.parse_satisfaction(questions, form)
    except ValidationFailed as exc:
        raise _problems(exc) from exc
    try:
        with db.begin_nested():
            db.add(SurveyResponse(institution_id=institution_id, platform_id=platform_id,
                                  offering_id=offering_id,
                                  person_id=person_id, trigger=trigger, skipped=skipped,
                                  ratings=dict(answer.ratings)))
    except IntegrityError as exc:
        raise Conflict("You have already answered this survey.") from exc
    if answer.free_text:
        db.add(SurveyComment(institution_id=institution_id, platform_id=platform_id,
                             micro_credential_id=mc_id,
                             year=_offering_year(offering), text=answer.free_text))
    db.flush()


def consent_of(db: Session, person_id: int) -> bool:
    return bool(db.scalar(select(ContactConsent.email_follow_ups).where(
        ContactConsent.person_id == person_id)))


def set_consent(db: Session, *, institution_id: int, platform_id: int, person_id: int,
                email_ok: bool) -> None:
    row = db.scalar(select(ContactConsent).where(ContactConsent.person_id == person_id))
    if row is None:
        db.add(ContactConsent(institution_id=institution_id, platform_id=platform_id,
                              person_id=person_id,
                              email_follow_ups=email_ok))
    else:
        row.email_follow_ups = email_ok
    db.flush()


# --- Employability follow-ups ---------------------------------------------------------------


def ensure_follow_ups(db: Session, now: datetime, *, platform_id: int | None = None,
                      person_id: int | None = None) -> int:
    """Create the follow-up that has fallen due for each active credential (idempotent)."""
    stmt = (select(Credential.id, Credential.platform_id, Credential.person_id,
                   Credential.issued_at, MicroCredentialVersion.micro_credential_id,
                   MicroCredentialVersion.institution_id)
            .join(MicroCredentialVersion, MicroCredentialVersion.id == Credential.mc_version_id)
            .where(Credential.status == "active",
                   Credential.issued_at <= rules_first_due(now)))
    if platform_id is not None:
        stmt = stmt.where(Credential.platform_id == platform_id)
    if person_id is not None:
        stmt = stmt.where(Credential.person_id == person_id)
    rows = db.execute(stmt).all()
    if not rows:
        return 0
    existing = set(db.execute(select(FollowUp.credential_id, FollowUp.months).where(
        FollowUp.credential_id.in_([r.id for r in rows]))))
    created = 0
    for row in rows:
        months = rules.follow_up_due(row.issued_at, now)
        if months is None or (row.id, months) in existing:
            continue
        try:
            with db.begin_nested():
                db.add(FollowUp(institution_id=row.institution_id, platform_id=row.platform_id,
                                credential_id=row.id,
                                person_id=row.person_id,
                                micro_credential_id=row.micro_credential_id, months=months,
                                due_at=rules.add_months(row.issued_at, months),
                                nonce=secrets.token_urlsafe(24)))
            created += 1
        except IntegrityError:
            continue  # another worker created it first
    return created


def rules_first_due(now: datetime) -> datetime:
    """Credentials issued after this moment have no follow-up due yet."""
    return rules.add_months(now, -rules.FOLLOW_UP_MONTHS[0])


@dataclass(frozen=True)
class OpenFollowUp:
    follow_up: FollowUp
    title: str


def open_follow_ups(db: Session, platform_id: int, person_id: int) -> list[OpenFollowUp]:
    """The learner's unanswered follow-ups: the latest due one per credential, unless a later
    one was answered already (one query)."""
    rows = db.execute(
        select(FollowUp, MicroCredentialVersion.title)
        .join(Credential, Credential.id == FollowUp.credential_id)
        .join(MicroCredentialVersion, MicroCredentialVersion.id == Credential.mc_version_id)
        .where(FollowUp.platform_id == platform_id, FollowUp.person_id == person_id)
        .order_by(FollowUp.credential_id, FollowUp.months.desc())).all()
    latest: dict[int, OpenFollowUp | None] = {}
    for follow_up, title in rows:
        if follow_up.credential_id in latest:
            continue  # an older question about the same credential
        latest[follow_up.credential_id] = None if follow_up.answered_at else \
            OpenFollowUp(follow_up, title)
    return [item for item in latest.values() if item is not None]


def _serializer(settings: Settings) -> URLSafeSerializer:
    if not settings.secret_key and not settings.testing:
        raise RuntimeError("follow-up links need the tool's secret key")
    return URLSafeSerializer(settings.secret_key or "testing", salt=FOLLOW_UP_SALT)


def follow_up_token(settings: Settings, follow_up: FollowUp) -> str:
    """A signed link token naming the follow-up and its one-time nonce."""
    return _serializer(settings).dumps({"f": follow_up.id, "n": follow_up.nonce})


def follow_up_from_token(db: Session, settings: Settings, token: str) -> FollowUp:
    """The follow-up a link names; a tampered, unknown or used link is refused."""
    if not token or len(token) > 300:
        raise NotFound("This link is not valid.")
    try:
        data = _serializer(settings).loads(token)
    except BadSignature as exc:
        raise NotFound("This link is not valid.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("f"), int):
        raise NotFound("This link is not valid.")
    follow_up = db.get(FollowUp, data["f"])
    if follow_up is None or not secrets.compare_digest(str(data.get("n", "")), follow_up.nonce):
        raise NotFound("This link is not valid.")
    if follow_up.answered_at is not None:
        raise Conflict("This question has already been answered; the link works only once.")
    return follow_up


def answer_follow_up(db: Session, follow_up: FollowUp, values: Sequence[str],
                     now: datetime | None = None) -> tuple[str, ...]:
    """Record the answer once: the conditional update makes a replayed link fail (409)."""
    try:
        outcomes = rules.parse_employability(values)
    except ValidationFailed as exc:
        raise _problems(exc) from exc
    if changed_rows(db, update(FollowUp).where(FollowUp.id == follow_up.id,
                                               FollowUp.answered_at.is_(None))
                    .values(answered_at=now or utcnow(), outcomes=list(outcomes))) != 1:
        raise Conflict("This question has already been answered; the link works only once.")
    return outcomes


def own_follow_up(db: Session, platform_id: int, person_id: int, follow_up_id: int) -> FollowUp:
    follow_up = db.scalar(select(FollowUp).where(
        FollowUp.id == follow_up_id, FollowUp.platform_id == platform_id,
        FollowUp.person_id == person_id))
    if follow_up is None:
        raise NotFound("You have no such follow-up question.")
    if follow_up.answered_at is not None:
        raise Conflict("You have already answered this question.")
    return follow_up


MAIL_SUBJECT = {"en": "Did your micro-credential help you? (one question)",
                "tr": "Mikro yeterliliğiniz işinize yaradı mı? (tek soru)"}
MAIL_BODY = {
    "en": "Hello {name},\n\n{months} months ago you earned the micro-credential \"{title}\".\n"
          "Has it helped you (a new job, a promotion, an application, recognised credit)?\n"
          "Answer with one click; the link works once:\n\n{url}\n\n"
          "You receive this because you agreed to follow-up e-mails. {issuer}\n",
    "tr": "Merhaba {name},\n\n{months} ay önce \"{title}\" mikro yeterliliğini kazandınız.\n"
          "İşinize yaradı mı (yeni iş, terfi, başvuru, tanınan kredi)?\n"
          "Tek tıkla yanıtlayın; bağlantı bir kez çalışır:\n\n{url}\n\n"
          "Bu e-postayı izleme e-postalarına onay verdiğiniz için alıyorsunuz. {issuer}\n",
}


def follow_up_message(settings: Settings, *, to: str, name: str, title: str, months: int,
                      url: str, lang: str) -> EmailMessage:
    lang = lang if lang in MAIL_BODY else "en"
    message = EmailMessage()
    message["From"] = settings.smtp_from or settings.issuer_email or "no-reply@localhost"
    message["To"] = to
    message["Subject"] = MAIL_SUBJECT[lang]
    message.set_content(MAIL_BODY[lang].format(name=name or "", months=months, title=title,
                                               url=url, issuer=settings.issuer_name))
    return message


def send_mail(settings: Settings, message: EmailMessage) -> None:
    """Send one message through the configured SMTP server (STARTTLS and login optional)."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                      timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


def send_due_follow_ups(db: Session, settings: Settings, *, now: datetime | None = None,
                        link_for=None) -> dict[str, int]:
    """Materialise due follow-ups, then e-mail each once where the learner consented and an
    e-mail is known. A plain function: the scheduler (and later a job runner) calls it; the
    caller commits. Returns counts {created, sent, failed}."""
    now = now or utcnow()
    counts = {"created": ensure_follow_ups(db, now), "sent": 0, "failed": 0}
    if not settings.smtp_host:
        return counts
    rows = db.execute(
        select(FollowUp, Person, MicroCredentialVersion.title)
        .join(Person, Person.id == FollowUp.person_id)
        .join(ContactConsent, ContactConsent.person_id == FollowUp.person_id)
        .join(Credential, Credential.id == FollowUp.credential_id)
        .join(MicroCredentialVersion, MicroCredentialVersion.id == Credential.mc_version_id)
        .where(FollowUp.emailed_at.is_(None), FollowUp.answered_at.is_(None),
               FollowUp.email_error == "",
               ContactConsent.email_follow_ups.is_(True), Person.email.is_not(None),
               Person.email != "")).all()
    link_for = link_for or (lambda token: settings.url(f"/follow-up/{token}"))
    for follow_up, person, title in rows:
        message = follow_up_message(
            settings, to=person.email or "", name=person.given_name or person.name,
            title=title, months=follow_up.months, url=link_for(follow_up_token(settings,
                                                                               follow_up)),
            lang=(person.locale or "en")[:2])
        try:
            send_mail(settings, message)
        except (OSError, smtplib.SMTPException) as exc:
            follow_up.email_error = f"{type(exc).__name__}: {exc}"[:500]
            counts["failed"] += 1
            log.warning("follow-up %s: e-mail failed: %s", follow_up.id, exc)
            continue
        follow_up.emailed_at = now
        counts["sent"] += 1
    db.flush()
    return counts


# --- Instructor reflection ------------------------------------------------------------------

MAX_REFLECTION = 4000


def reflection_of(db: Session, offering_id: int, person_id: int) -> InstructorReflection | None:
    return db.scalar(select(InstructorReflection).where(
        InstructorReflection.offering_id == offering_id,
        InstructorReflection.person_id == person_id))


def save_reflection(db: Session, *, institution_id: int, platform_id: int, offering_id: int,
                    person_id: int, worked: str, change: str) -> InstructorReflection:
    worked, change = worked.strip(), change.strip()
    if len(worked) > MAX_REFLECTION or len(change) > MAX_REFLECTION:
        raise BadRequest(f"Each answer may have at most {MAX_REFLECTION} characters.")
    if not worked and not change:
        raise BadRequest("Write what worked or what to change.")
    row = reflection_of(db, offering_id, person_id)
    if row is None:
        row = InstructorReflection(institution_id=institution_id, platform_id=platform_id,
                                   offering_id=offering_id,
                                   person_id=person_id)
        db.add(row)
    row.worked, row.change = worked, change
    db.flush()
    return row


# --- Stakeholder links ----------------------------------------------------------------------


def create_link(db: Session, *, institution_id: int, platform_id: int | None, mc_id: int,
                label: str) -> StakeholderLink:
    """A new public feedback link for one of the institution's micro-credentials."""
    if db.scalar(select(MicroCredential.id).where(
            MicroCredential.id == mc_id, MicroCredential.institution_id == institution_id)
                 ) is None:
        raise NotFound("No such micro-credential in your catalogue.")
    link = StakeholderLink(institution_id=institution_id, platform_id=platform_id,
                           micro_credential_id=mc_id,
                           token=secrets.token_urlsafe(24), label=label.strip()[:200])
    db.add(link)
    db.flush()
    return link


def links_of(db: Session, institution_id: int) -> list[StakeholderLink]:
    return list(db.scalars(select(StakeholderLink).where(
        StakeholderLink.institution_id == institution_id).order_by(StakeholderLink.id.desc())))


def link_by_token(db: Session, token: str) -> StakeholderLink:
    link = db.scalar(select(StakeholderLink).where(StakeholderLink.token == token[:100],
                                                   StakeholderLink.active.is_(True))) \
        if token and len(token) <= 100 else None
    if link is None:
        raise NotFound("This feedback link is not valid (any more).")
    return link


def record_feedback(db: Session, link: StakeholderLink, *, role: str, themes: Sequence[str],
                    rating: str, text: str) -> StakeholderFeedback:
    try:
        parsed = rules.parse_stakeholder(role, themes, rating, text)
    except ValidationFailed as exc:
        raise _problems(exc) from exc
    row = StakeholderFeedback(institution_id=link.institution_id, platform_id=link.platform_id,
                              micro_credential_id=link.micro_credential_id, link_id=link.id,
                              role=parsed.role, themes=list(parsed.themes),
                              rating=parsed.rating, text=parsed.text)
    db.add(row)
    db.flush()
    return row


def decision_of(db: Session, platform_id: int, person_id: int, offering_id: int
                ) -> Decision | None:
    return db.scalar(select(Decision).where(Decision.platform_id == platform_id,
                                            Decision.person_id == person_id,
                                            Decision.offering_id == offering_id))


@dataclass(frozen=True)
class LearnerPrompts:
    """What the learner page asks: satisfaction surveys by offering id, follow-ups, consent."""

    surveys: dict[int, str]  # offering id -> trigger
    follow_ups: list[OpenFollowUp]
    email_consent: bool
    questions: list[rules.Question]
    has_credentials: bool = False


def learner_prompts(db: Session, *, institution_id: int, platform_id: int, person_id: int,
                    items: Sequence[tuple[int, str | None, bool]],
                    issued: Sequence[datetime] = (), now: datetime | None = None
                    ) -> LearnerPrompts:
    """`items`: (offering id, decision status, credential accepted) of the learner's page;
    `issued`: when the learner's credentials shown on the page were issued.

    Creates the learner's due follow-ups on the way (idempotent), so a later launch asks them
    even before the hourly job has run; the caller commits. Asks the store only for what may
    be shown: nothing at all for a learner with no survey due and no credential of 6 months.
    """
    now = now or utcnow()
    candidates = {offering_id: trigger for offering_id, status, accepted in items
                  if (trigger := survey_trigger(status, accepted))}
    answered = answered_offerings(db, platform_id, person_id, list(candidates))
    pending = {k: v for k, v in candidates.items() if k not in answered}
    follow_ups: list[OpenFollowUp] = []
    if any(moment <= rules_first_due(now) for moment in issued):
        ensure_follow_ups(db, now, platform_id=platform_id, person_id=person_id)
        follow_ups = open_follow_ups(db, platform_id, person_id)
    return LearnerPrompts(pending, follow_ups,
                          consent_of(db, person_id) if issued else False,
                          questions_of(db, institution_id) if pending else [],
                          has_credentials=bool(issued))
