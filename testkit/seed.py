"""Seed data for the pages' tests and bench: a platform, a course, people, an offering.

Rows are written with the models directly (bulk inserts for big courses), as the other areas'
services would have left them, so the pages can be tested and measured on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import insert

from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import (
    LearningOutcome,
    MicroCredential,
    MicroCredentialVersion,
    Offering,
)
from lti_tool.store.models.core import Context, Deployment, Membership, Person, Platform
from lti_tool.store.models.evaluation import Attempt, Decision
from lti_tool.web.auth import start_session
from testkit.institutions import institution_for_new_platform

LEVELS = [
    {"code": "novice", "label": "Novice", "descriptor": "Recalls terms with help.",
     "lower_bound": "0"},
    {"code": "developing", "label": "Developing", "descriptor": "Applies with some errors.",
     "lower_bound": "50"},
    {"code": "proficient", "label": "Proficient", "descriptor": "Applies correctly alone.",
     "lower_bound": "70"},
    {"code": "advanced", "label": "Advanced", "descriptor": "Adapts to new cases.",
     "lower_bound": "85"},
]
THRESHOLD = "proficient"


@dataclass
class Course:
    """Ids of a seeded platform/course and a session token per person key."""

    platform_id: int
    context_id: int
    people: dict[str, int]
    tokens: dict[str, str]
    offering_id: int | None = None
    outcome_codes: list[str] = field(default_factory=list)


def seed_course(db, *, issuer: str = "https://lms.invalid", learners: int = 2,
                locale: str = "en", sessions: bool = True) -> Course:
    """One platform, one course, an instructor, an Office admin and `learners` learners."""
    platform = Platform(institution_id=institution_for_new_platform(db).id, status="active",
                        issuer=issuer, client_id="client-1", name="Example LMS",
                        lms_kind="moodle", auth_login_url=issuer + "/auth",
                        auth_token_url=issuer + "/token", key_set_url=issuer + "/jwks")
    db.add(platform)
    db.flush()
    deployment = Deployment(platform_id=platform.id, deployment_id="1")
    db.add(deployment)
    db.flush()
    context = Context(platform_id=platform.id, deployment_id=deployment.id,
                      context_id="course-101", label="C101", title="Data Literacy 101")
    db.add(context)
    db.flush()
    keys = ["instructor", "admin"] + [f"learner{i}" for i in range(1, learners + 1)]
    db.execute(insert(Person), [
        {"platform_id": platform.id, "sub": f"sub-{key}", "name": f"{key.title()} Example",
         "given_name": key.title(), "family_name": "Example"} for key in keys])
    people = {p.sub.removeprefix("sub-"): p.id for p in
              db.query(Person).filter(Person.platform_id == platform.id)}
    db.execute(insert(Membership), [
        {"context_id": context.id, "person_id": people[key],
         "role": "learner" if key.startswith("learner") else key} for key in keys])
    tokens: dict[str, str] = {}
    if sessions:
        for key in ("instructor", "admin", "learner1", "learner2"):
            if key in people:
                tokens[key] = start_session(
                    db, platform_id=platform.id, person_id=people[key], context_id=context.id,
                    resource_link_id=None,
                    role="learner" if key.startswith("learner") else key, locale=locale)
    db.commit()
    return Course(platform.id, context.id, people, tokens)


def seed_offering(db, course: Course, *, outcomes: int = 3, code: str = "DATA-101",
                  policy: str = "learner_request") -> Course:
    """An approved micro-credential with `outcomes` LOs, offered in the course."""
    now = utcnow()
    mc = MicroCredential(platform_id=course.platform_id, institution_id=db.get(Platform,
                         course.platform_id).institution_id, code=code)
    db.add(mc)
    db.flush()
    version = MicroCredentialVersion(
        # The mandatory EU micro-credential (Annex I) elements a credential states.
        participation_form="online", quality_assurance="Annual review by the Office",
        assessment_methods=["Project"],
        platform_id=course.platform_id, institution_id=mc.institution_id,
        micro_credential_id=mc.id, version=1, status="approved",
        title="Data Literacy Basics", description="Read, clean and chart a data set.",
        kind="embedded", tqf_level=6, eqf_level=6, workload_hours=Decimal(25), ects=Decimal(1),
        approved_at=now, revalidation_due=now + timedelta(days=30))
    db.add(version)
    db.flush()
    course.outcome_codes = [f"LO{i}" for i in range(1, outcomes + 1)]
    for position, lo in enumerate(course.outcome_codes):
        db.add(LearningOutcome(platform_id=course.platform_id, version_id=version.id,
                               position=position, code=lo,
                               statement=f"Outcome {lo}: works with data ({position + 1}).",
                               domain="skill", levels=LEVELS, threshold=THRESHOLD))
    offering = Offering(platform_id=course.platform_id, context_id=course.context_id,
                        mc_version_id=version.id, reevaluation_policy=policy,
                        reevaluation_window_days=14,
                        window_closes_at=now + timedelta(days=20))
    db.add(offering)
    db.commit()
    course.offering_id = offering.id
    return course


def outcome_entry(percent: float | None) -> dict:
    """A `Decision.outcomes` entry as evaluation stores it."""
    if percent is None:
        return {"status": "not_yet_assessed", "level": None, "percent": None}
    level = [lv for lv in LEVELS if Decimal(lv["lower_bound"]) <= Decimal(str(percent))][-1]
    attained = [lv["code"] for lv in LEVELS].index(level["code"]) >= 2
    return {"status": "attained" if attained else "not_attained", "level": level["code"],
            "percent": str(percent)}


def seed_decision(db, course: Course, key: str, percents: list[float | None], *,
                  status: str = "in_progress", reevaluations_used: int = 0) -> Decision:
    """One learner's decision with given LO percents (None = not yet marked)."""
    decision = Decision(
        platform_id=course.platform_id, offering_id=course.offering_id,
        person_id=course.people[key], status=status, reevaluations_used=reevaluations_used,
        outcomes={c: outcome_entry(p) for c, p in zip(course.outcome_codes, percents,
                                                      strict=True)},
        decided_at=utcnow() if status != "in_progress" else None,
        passed_at=utcnow() if status == "passed" else None)
    db.add(decision)
    db.flush()
    db.add(Attempt(decision_id=decision.id, number=1))
    if reevaluations_used:
        db.add(Attempt(decision_id=decision.id, number=2,
                       closes_at=utcnow() + timedelta(days=7)))
    db.commit()
    return decision


def seed_many_decisions(db, course: Course) -> None:
    """A decision for every learner of a big course, spread over all statuses (bulk insert)."""
    statuses = ["in_progress", "passed", "failed", "reevaluation_granted", "failed_final"]
    rows = []
    for index, (key, person_id) in enumerate(sorted(course.people.items())):
        if not key.startswith("learner"):
            continue
        percents = [(index * 7 + j * 13) % 101 for j in range(len(course.outcome_codes))]
        rows.append({
            "platform_id": course.platform_id, "offering_id": course.offering_id,
            "person_id": person_id, "status": statuses[index % len(statuses)],
            "outcomes": {c: outcome_entry(p) for c, p in zip(course.outcome_codes, percents,
                                                             strict=True)},
        })
    db.execute(insert(Decision), rows)
    db.commit()


def seed_story(db, settings, *, learners: int = 3, locale: str = "en") -> Course:
    """A course with an offering: learner1 failed (may ask again), learner2 passed and holds
    the badge, issued by the badges area with a real signature; the rest not yet assessed."""
    from lti_tool.badges.issuance import issue_on_pass

    course = seed_offering(db, seed_course(db, learners=learners, locale=locale))
    seed_decision(db, course, "learner1", [80, 60, None], status="failed")
    seed_decision(db, course, "learner2", [90, 75, 88], status="passed")
    issue_on_pass(db, settings, person_id=course.people["learner2"],
                  mc_version_id=db.get(Offering, course.offering_id).mc_version_id,
                  offering_id=course.offering_id, outcome_levels={"LO1": "advanced"},
                  passed_at=utcnow())
    db.commit()
    return course
