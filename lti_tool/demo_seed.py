"""What `lti-tool demo` seeds: the practice LMS's course and the tool's side of the demo.

The practice course (people, gradebook items, scores) lives in the practice LMS; the tool
learns about it the way it would from a real LMS: launches, AGS and NRPS. The tool-side seed is
a list of steps (`STEPS`) run in one transaction when the demo starts; every step must be
idempotent because the demo database survives restarts.

`seed_passed_learner` goes through the real services, not around them: the catalogue imports
and approves the example micro-credential and places it in the practice course, and the
evaluation records the first learner's pass by recognition of prior learning, which issues the
credential in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.badges.issuance import find_credential
from lti_tool.catalogue import importexport, service
from lti_tool.demo_past_year import seed_past_year
from lti_tool.domain.actors import labelled
from lti_tool.grades.evaluation import recognise_prior_learning
from lti_tool.launch.platforms import PlatformSpec, find_platform, register_platform
from lti_tool.settings import Settings
from lti_tool.store.institutions import InstitutionSpec, create_institution, find_institution
from lti_tool.store.models.catalogue import MicroCredentialVersion
from lti_tool.store.models.core import Context, Institution, Membership, Person, Platform

DEMO_CLIENT_ID = "practice-lms-tool"
DEMO_DEPLOYMENT_ID = "1"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


OFFICE_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    username: str
    given_name: str
    family_name: str
    role: str  # "Instructor" | "Learner" (NRPS short names) | "Administrator" (the Office)

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def email(self) -> str:
        return f"{self.username}@practice-lms.example"

    @property
    def lis_roles(self) -> list[str]:
        if self.role == "Administrator":  # the Micro-credentials Office: an institution role
            return [OFFICE_ROLE]
        return [LIS + self.role]


@dataclass
class DemoGradeItem:
    """A gradebook column; `scores` maps user_id -> points (None: not graded yet)."""

    item_id: int
    label: str
    score_maximum: float
    tag: str = ""
    resource_id: str = ""
    scores: dict[str, float | None] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)


@dataclass
class DemoCourse:
    """One course of the practice LMS; mutable because the tool may post scores and items."""

    context_id: str
    label: str
    title: str
    resource_link_id: str
    resource_link_title: str
    users: list[DemoUser]
    items: list[DemoGradeItem]
    placed_links: list[dict] = field(default_factory=list)
    lock: Lock = field(default_factory=Lock, repr=False)

    @property
    def instructor(self) -> DemoUser:
        return next(u for u in self.users if u.role == "Instructor")

    @property
    def learners(self) -> list[DemoUser]:
        return [u for u in self.users if u.role == "Learner"]

    @property
    def office(self) -> DemoUser | None:
        return next((u for u in self.users if u.role == "Administrator"), None)

    @property
    def members(self) -> list[DemoUser]:
        """The course's roster (NRPS): the Office launches but is not a course member."""
        return [u for u in self.users if u.role != "Administrator"]

    def user(self, user_id: str) -> DemoUser | None:
        return next((u for u in self.users if u.user_id == user_id), None)

    def item(self, item_id: int) -> DemoGradeItem | None:
        return next((i for i in self.items if i.item_id == item_id), None)

    def add_item(self, label: str, score_maximum: float, tag: str = "",
                 resource_id: str = "") -> DemoGradeItem:
        with self.lock:
            item = DemoGradeItem(max(i.item_id for i in self.items) + 1, label, score_maximum,
                                 tag, resource_id)
            self.items.append(item)
            return item


# Scores out of each item's maximum; the first learner has done well everywhere (the one
# `seed_passed_learner` may award), the last has not been graded on everything yet.
_SCORES = {
    "4": (92, 18, 46, 9),
    "5": (74, 15, 38, 7),
    "6": (58, 11, 29, 6),
    "7": (45, 8, 20, 4),
    "8": (81, None, None, 8),
}


def practice_course() -> DemoCourse:
    """The seeded course: one instructor, five learners, four gradebook items."""
    users = [
        DemoUser("2", "office", "Oya", "Office", "Administrator"),
        DemoUser("3", "teacher1", "Terry", "Teacher", "Instructor"),
        DemoUser("4", "ayse", "Ayşe", "Yılmaz", "Learner"),
        DemoUser("5", "mehmet", "Mehmet", "Demir", "Learner"),
        DemoUser("6", "elif", "Elif", "Kaya", "Learner"),
        DemoUser("7", "john", "John", "Smith", "Learner"),
        DemoUser("8", "maria", "María", "García", "Learner"),
    ]
    columns = [("Essay 1", 100.0, "essay"), ("Quiz 1", 20.0, "quiz"),
               ("Group project", 50.0, "project"), ("Participation", 10.0, "participation")]
    items = [
        DemoGradeItem(item_id=index + 2, label=label, score_maximum=maximum, tag=tag,
                      resource_id=tag,
                      scores={uid: scores[index] for uid, scores in _SCORES.items()})
        for index, (label, maximum, tag) in enumerate(columns)
    ]
    return DemoCourse(context_id="2", label="MC101", title="Data Literacy (practice course)",
                      resource_link_id="1", resource_link_title="Micro-credentials",
                      users=users, items=items)


@dataclass
class SeedContext:
    """What each tool-side seed step gets."""

    db: Session
    settings: Settings
    course: DemoCourse
    lms_url: str
    platform: Platform | None = None


DEMO_INSTITUTION = InstitutionSpec(slug="example", name="Example University", country="TR",
                                   url="https://www.example.edu", email="office@example.edu",
                                   # fictitious; a European Digital Credential needs them
                                   region="İzmir", legal_identifier="TR-DEMO-0000000001")


def demo_institution(db: Session) -> Institution:
    """Institution `example` (Example University, TR), made once."""
    return find_institution(db, DEMO_INSTITUTION.slug) or create_institution(db, DEMO_INSTITUTION)


def register_practice_lms(ctx: SeedContext) -> None:
    """The practice LMS as an active registration of institution `example`; its URLs follow
    the chosen port."""
    institution = demo_institution(ctx.db)
    spec = PlatformSpec(
        issuer=ctx.lms_url, client_id=DEMO_CLIENT_ID, name="Practice LMS", lms_kind="other",
        auth_login_url=f"{ctx.lms_url}/auth", auth_token_url=f"{ctx.lms_url}/token",
        key_set_url=f"{ctx.lms_url}/jwks", deployments=[DEMO_DEPLOYMENT_ID],
        registered_via="demo",
    )
    ctx.platform = find_platform(ctx.db, spec.issuer, spec.client_id) or register_platform(
        ctx.db, spec, institution_id=institution.id, status="active")


log = logging.getLogger(__name__)
EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "examples" \
    / "data-literacy-for-engineers.yaml"
DEMO_ACTOR = "demo seed"


class _User(Protocol):
    user_id: str
    given_name: str
    family_name: str
    name: str
    email: str


def _approved_example(db: Session, platform_id: int) -> MicroCredentialVersion | None:
    """The example micro-credential, imported and approved once."""
    office = labelled(DEMO_ACTOR, role="admin")
    if not EXAMPLE.is_file():
        log.warning("demo: %s is missing; no credential is seeded", EXAMPLE)
        return None
    plan = service.plan_from_document(db, platform_id, importexport.load_text(EXAMPLE.read_text()))
    existing = service.find_by_code(db, platform_id, plan.code)
    version = existing.head if existing is not None else service.create(db, platform_id, plan,
                                                                         office)
    for action, status in (("submit", "draft"), ("approve", "in_review")):
        if version.status == status:
            service.act(db, platform_id, version.id, action, office, note="demo")
    return version if version.status == "approved" else None


def _row(db: Session, model: type, defaults: dict, **key: object) -> object:
    """The row with `key`, created with `defaults` when missing."""
    found = db.scalar(select(model).filter_by(**key))
    if found is None:
        found = model(**key, **defaults)
        db.add(found)
        db.flush()
    return found


def seed_passed_learner(ctx: SeedContext) -> None:
    """The example micro-credential, approved and placed, and one learner who holds it."""
    platform: Platform | None = ctx.platform
    if platform is None:
        return
    db, settings = ctx.db, ctx.settings
    version = _approved_example(db, platform.id)
    if version is None:
        return
    course = ctx.course
    learner: _User = course.learners[0]
    context = _row(db, Context, {"label": course.label, "title": course.title},
                   platform_id=platform.id, context_id=course.context_id)
    person = _row(db, Person, {"name": learner.name, "given_name": learner.given_name,
                               "family_name": learner.family_name, "email": learner.email},
                  platform_id=platform.id, sub=learner.user_id)
    _row(db, Membership, {"role": "learner", "source": "demo"}, context_id=context.id,
         person_id=person.id)
    if find_credential(db, person.id, version.id) is not None:
        return
    offering = service.place(db, platform.id, context.id, version.id,
                             labelled(DEMO_ACTOR, role="admin"))
    offering.grade_passback = True  # the practice LMS shows the result in its gradebook
    evidence = {outcome.code: {"evidence": "Demo: portfolio reviewed by the assessor.",
                               "level": outcome.levels[-1]["code"]}
                for outcome in version.outcomes}
    recognise_prior_learning(db, settings, offering.id, person.id, labelled(DEMO_ACTOR),
                             evidence)
    db.flush()


def seed_last_year(ctx: SeedContext) -> None:
    """Last calendar year's run of the example micro-credential, for the Office's report."""
    if ctx.platform is None:
        return
    teacher = ctx.course.instructor
    instructor = _row(ctx.db, Person, {"name": teacher.name, "given_name": teacher.given_name,
                                       "family_name": teacher.family_name,
                                       "email": teacher.email},
                      platform_id=ctx.platform.id, sub=teacher.user_id)
    seed_past_year(ctx.db, ctx.settings, ctx.platform, course_title=ctx.course.title,
                   instructor=instructor)


SeedStep = Callable[[SeedContext], None]
STEPS: list[SeedStep] = [register_practice_lms, seed_passed_learner, seed_last_year]


def run_tool_seed(ctx: SeedContext, steps: list[SeedStep] | None = None) -> SeedContext:
    for step in steps if steps is not None else STEPS:
        step(ctx)
    ctx.db.flush()
    return ctx
