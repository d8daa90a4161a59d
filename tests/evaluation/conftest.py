"""A course with an offering of a 3-LO micro-credential, gradebook items and learners."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.domain.actors import Actor
from lti_tool.domain.evaluation import GRADE_ITEM, TOOL_RUBRIC, SourceSpec
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import (
    LearningOutcome,
    MicroCredential,
    MicroCredentialVersion,
    Offering,
)
from lti_tool.store.models.core import Context, Membership, Person, Platform
from lti_tool.store.models.grades import GradeItem, Score
from tests.conftest import institution_for_new_platform
from tests.loopback import allow_loopback_fakes

LEVELS = [
    {"code": "beginning", "label": "Beginning", "lower_bound": "0", "descriptor": ""},
    {"code": "developing", "label": "Developing", "lower_bound": "50", "descriptor": ""},
    {"code": "proficient", "label": "Proficient", "lower_bound": "70", "descriptor": ""},
    {"code": "exemplary", "label": "Exemplary", "lower_bound": "85", "descriptor": ""},
]


@dataclass
class Course:
    """Handles to the rows of one seeded course, plus helpers that change marks."""

    db: Session
    platform: Platform
    context: Context
    offering: Offering
    instructor: Person
    learners: list[Person]
    items: dict[str, GradeItem] = field(default_factory=dict)

    @property
    def by(self) -> Actor:
        """The instructor as the acting person."""
        return Actor(person_id=self.instructor.id, role="instructor")

    def mark(self, learner: Person, item: str, score: str | None,
             at: datetime | None = None) -> None:
        row = self.db.scalar(select(Score).where(Score.grade_item_id == self.items[item].id,
                                                 Score.person_id == learner.id))
        if row is None:
            row = Score(grade_item_id=self.items[item].id, person_id=learner.id, source="ags")
            self.db.add(row)
        row.score = None if score is None else Decimal(score)
        row.maximum = self.items[item].maximum
        row.lms_updated_at = at or utcnow()
        self.db.flush()

    def mapping(self) -> dict[str, list[SourceSpec]]:
        """LO1 <- quiz1 (1) + quiz2 (2); LO2 <- project; LO3 <- tool rubric."""
        return {
            "LO1": [SourceSpec(GRADE_ITEM, str(self.items["quiz1"].id), Decimal(1)),
                    SourceSpec(GRADE_ITEM, str(self.items["quiz2"].id), Decimal(2))],
            "LO2": [SourceSpec(GRADE_ITEM, str(self.items["project"].id), Decimal(1))],
            "LO3": [SourceSpec(TOOL_RUBRIC, "LO3", Decimal(1))],
        }


def seed_course(db: Session, *, issuer: str = "https://lms.example.edu", learners: int = 3,
                policy: str = "instructor", closes_in: timedelta | None = timedelta(days=30),
                context: Context | None = None, subs: list[str] | None = None,
                passback: bool = True) -> Course:
    """Seed the course; `context` (with its platform) and learner `subs` let a test point the
    offering at a fake LMS course and its real user ids."""
    if context is None:
        platform = Platform(institution_id=institution_for_new_platform(db).id, status="active",
                            issuer=issuer, client_id="tool", name="LMS",
                            auth_login_url=issuer + "/auth", auth_token_url=issuer + "/token")
        db.add(platform)
        db.flush()
        context = Context(platform_id=platform.id, context_id="course-1", title="Course 1",
                          ags_lineitems_url=issuer + "/lineitems",
                          ags_scopes=["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                                      "https://purl.imsglobal.org/spec/lti-ags/scope/score"])
        db.add(context)
    else:
        platform = db.get(Platform, context.platform_id)
    mc = MicroCredential(platform_id=platform.id, institution_id=db.get(Platform,
                         platform.id).institution_id, code="DATA-101")
    db.add(mc)
    db.flush()
    version = MicroCredentialVersion(
        # The mandatory EU micro-credential (Annex I) elements a credential states.
        participation_form="online", quality_assurance="Annual review by the Office",
        assessment_methods=["Project"],
        platform_id=platform.id, institution_id=mc.institution_id,
        micro_credential_id=mc.id, version=1, status="approved",
        title="Data Literacy", kind="embedded", tqf_level=6, eqf_level=6,
        workload_hours=Decimal(25))
    db.add(version)
    db.flush()
    for position, code in enumerate(("LO1", "LO2", "LO3")):
        db.add(LearningOutcome(platform_id=platform.id, version_id=version.id,
                               position=position, code=code, statement=f"{code} statement",
                               domain="skill", required=True, levels=LEVELS,
                               threshold="proficient"))
    instructor = Person(platform_id=platform.id, sub="teacher", name="Teacher")
    people = [Person(platform_id=platform.id, sub=sub, name=f"Student {n}")
              for n, sub in enumerate(subs or [f"s{n}" for n in range(learners)])]
    db.add_all([instructor, *people])
    db.flush()
    db.add(Membership(context_id=context.id, person_id=instructor.id, role="instructor"))
    db.add_all(Membership(context_id=context.id, person_id=p.id, role="learner")
               for p in people)
    offering = Offering(platform_id=platform.id, context_id=context.id,
                        mc_version_id=version.id, reevaluation_policy=policy,
                        reevaluation_window_days=14, grade_passback=passback,
                        window_closes_at=utcnow() + closes_in if closes_in else None)
    db.add(offering)
    items = {}
    for name, maximum in (("quiz1", "10"), ("quiz2", "20"), ("project", "100"),
                          ("retake", "100")):
        items[name] = GradeItem(context_id=context.id, source="ags", external_id=name,
                                label=name.title(), maximum=Decimal(maximum))
    db.add_all(items.values())
    db.flush()
    return Course(db, platform, context, offering, instructor, people, items)


@pytest.fixture
def course(db: Session) -> Course:
    return seed_course(db)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Grade passback talks to fake LMSs on loopback: the tool may call them (only them)."""
    return allow_loopback_fakes(settings)
