"""The demo's previous calendar year, so the Office's report page (which opens on last year)
shows real figures at once: one past run of the example micro-credential with twelve learners.

Credentials are issued and signed by the badges service, dated in that year; decisions, survey
answers, follow-ups, stakeholder feedback, a reflection and improvement actions are written as
their services leave them, dated in that year. Idempotent: the past course is made once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.badges.issuance import issue_on_pass
from lti_tool.catalogue import service
from lti_tool.domain.actors import labelled
from lti_tool.reports import surveys
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredentialVersion
from lti_tool.store.models.core import AuditEntry, Context, Membership, Person, Platform
from lti_tool.store.models.evaluation import Decision
from lti_tool.store.models.reports import (
    FollowUp,
    ImprovementAction,
    InstructorReflection,
    StakeholderFeedback,
    SurveyComment,
    SurveyResponse,
)

PAST_CONTEXT = "demo-past-year"
# (given name, family name, decision status, re-evaluation used, accepted, shared,
#  satisfaction ratings q1..q4 or None (no answer), follow-up outcomes or None)
LEARNERS = (
    ("Ayşe", "Demir", "passed", 0, True, True, (5, 5, 4, 5), ("new_job",)),
    ("Mehmet", "Kaya", "passed", 0, True, True, (4, 4, 4, 5), ("promotion",)),
    ("Elif", "Şahin", "passed", 0, True, False, (5, 4, 3, 4), ("application",)),
    ("Can", "Yıldız", "passed", 0, True, False, (4, 5, 4, 4), ("recognised_credit",)),
    ("Zeynep", "Çelik", "passed", 1, True, False, (3, 4, 2, 4), ("not_yet",)),
    ("Emre", "Aydın", "passed", 0, True, False, (5, 5, 5, 5), ("new_job", "application")),
    ("Selin", "Öztürk", "passed", 0, False, False, None, None),
    ("Burak", "Arslan", "passed", 0, False, False, (4, 3, 3, 4), None),
    ("Deniz", "Koç", "failed", 0, False, False, (2, 3, 2, 3), None),
    ("Ece", "Kurt", "failed_final", 1, False, False, (3, 2, 2, 3), None),
    ("Kerem", "Özdemir", "failed", 0, False, False, None, None),
    ("Nil", "Aksoy", "in_progress", 0, False, False, None, None),
)
COMMENTS = ("More worked examples with real engineering data, please.",
            "The workload was higher than announced in weeks 3 and 4.",
            "Clear rubric; the feedback on the project came quickly.")
FEEDBACK = (("employer", ("relevance",), 5, "The graduates we hired clean data confidently."),
            ("employer", ("relevance", "skills_gap"), 4, "Add more on data visualisation."),
            ("employer", ("relevance",), 4, ""),
            ("graduate", ("recognition",), 4, "My employer recognised the badge."),
            ("partner", ("workload",), 3, ""),
            ("employer", ("skills_gap",), 4, ""))


def _at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=UTC)


def seed_past_year(db: Session, settings: Settings, platform: Platform, *, course_title: str,
                   instructor: Person) -> None:
    """Last calendar year's run of the example micro-credential (made once) in a past course
    of the practice LMS's registration, taught by the practice course's instructor."""
    made = select(Context.id).join(Platform, Platform.id == Context.platform_id).where(
        Platform.institution_id == platform.institution_id, Context.context_id == PAST_CONTEXT)
    if db.scalar(made.limit(1)) is not None:
        return  # made on an earlier start (perhaps through the registration of another port)
    version = db.scalar(select(MicroCredentialVersion).where(
        MicroCredentialVersion.institution_id == platform.institution_id,
        MicroCredentialVersion.status == "approved")
        .order_by(MicroCredentialVersion.id).limit(1))
    if version is None:
        return  # no approved micro-credential (the example plan is missing)
    year = utcnow().year - 1
    closes = _at(year, 6, 30)
    office = labelled("demo seed", role="admin")
    context = Context(platform_id=platform.id, context_id=PAST_CONTEXT,
                      label="DATA-PAST", title=f"{course_title} (spring {year})")
    db.add(context)
    db.flush()
    offering = service.place(db, platform.id, context.id, version.id, office)
    offering.created_at, offering.window_closes_at = _at(year, 2, 1), closes
    offering.finalized_at = closes
    codes = [o.code for o in version.outcomes]
    top = {o.code: o.levels[-1]["code"] for o in version.outcomes}
    scope = {"institution_id": platform.institution_id, "platform_id": platform.id}
    for number, (given, family, status, reeval, accepted, shared, ratings, used) in \
            enumerate(LEARNERS, start=1):
        person = Person(platform_id=platform.id, sub=f"demo-past-{number}",
                        name=f"{given} {family}", given_name=given, family_name=family,
                        email=f"past{number}@example.edu")
        db.add(person)
        db.flush()
        db.add(Membership(context_id=context.id, person_id=person.id, role="learner",
                          source="demo"))
        attained = [status == "passed" or index < number % len(codes)
                    for index in range(len(codes))]
        passed_at = closes - timedelta(days=20 - number) if status == "passed" else None
        db.add(Decision(platform_id=platform.id, offering_id=offering.id,
                        person_id=person.id, status=status, reevaluations_used=reeval,
                        passed_via="evaluation" if status == "passed" else None,
                        passed_at=passed_at, decided_at=passed_at or closes,
                        evaluated_at=passed_at or closes, created_at=_at(year, 2, 1),
                        outcomes={code: {"status": "attained" if ok else "not_attained"}
                                  for code, ok in zip(codes, attained, strict=True)}))
        if passed_at is not None:
            credential = issue_on_pass(db, settings, person_id=person.id,
                                       mc_version_id=version.id, offering_id=offering.id,
                                       outcome_levels=top, passed_at=passed_at,
                                       issued_at=passed_at)
            if credential is not None:
                for action, done in (("credential.accepted", accepted),
                                     ("credential.shared", shared)):
                    if done:
                        db.add(AuditEntry(**scope, actor_person_id=person.id,
                                          actor_label=person.name, action=action,
                                          target=credential.public_id,
                                          at=passed_at + timedelta(days=1)))
                if used is not None:
                    due = passed_at + timedelta(days=183)
                    db.add(FollowUp(**scope, credential_id=credential.id,
                                    person_id=person.id,
                                    micro_credential_id=version.micro_credential_id,
                                    months=6, due_at=due, nonce=secrets.token_urlsafe(24),
                                    answered_at=due + timedelta(days=3), outcomes=list(used)))
        if ratings is not None:
            db.add(SurveyResponse(**scope, offering_id=offering.id, person_id=person.id,
                                  trigger="claimed" if status == "passed" else "not_passed",
                                  ratings=dict(zip(("q1", "q2", "q3", "q4"), ratings,
                                                   strict=True)),
                                  created_at=closes))
    for text in COMMENTS:
        db.add(SurveyComment(**scope, micro_credential_id=version.micro_credential_id,
                             year=year, text=text))
    link = surveys.create_link(db, institution_id=platform.institution_id,
                               platform_id=platform.id, mc_id=version.micro_credential_id,
                               label="Regional employers' association")
    for number, (role, themes, rating, text) in enumerate(FEEDBACK):
        db.add(StakeholderFeedback(**scope, micro_credential_id=version.micro_credential_id,
                                   link_id=link.id, role=role, themes=list(themes),
                                   rating=rating, text=text,
                                   created_at=_at(year, 9, 1 + number)))
    db.add(Membership(context_id=context.id, person_id=instructor.id, role="instructor",
                      source="demo"))
    db.add(InstructorReflection(**scope, offering_id=offering.id, person_id=instructor.id,
                                worked="Weekly data clinics before the project deadline.",
                                change="Publish the rubric in the first week."))
    db.add(ImprovementAction(
        **scope, year=year - 1, micro_credential_id=version.micro_credential_id,
        finding="Learners found the workload higher than announced",
        action="Re-estimate the notional workload with last year's learners",
        owner="Programme coordinator", due_on=_at(year, 3, 31), status="done",
        result="Workload re-estimated; the Design Plan now says 28 hours",
        created_at=_at(year - 1, 12, 1), updated_at=_at(year, 4, 2)))
    db.add(ImprovementAction(
        **scope, year=year, micro_credential_id=version.micro_credential_id,
        finding="Employers ask for more data visualisation",
        action="Add a visualisation task to the project", owner="Course instructor",
        due_on=_at(year + 1, 2, 28), status="in_progress",
        created_at=_at(year, 12, 1), updated_at=_at(year, 12, 1)))
    db.flush()
