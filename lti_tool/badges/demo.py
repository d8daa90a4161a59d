"""The demo's learner who has already passed: a fresh `lti-tool demo` has a credential to open.

`seed_passed_learner` is a tool-side seed step (`lti_tool.demo_seed.STEPS`). It goes through the
real services, not around them: the catalogue imports and approves the example micro-credential
and places it in the practice course, and the evaluation records the first learner's pass by
recognition of prior learning, which issues the credential in the same transaction. Every part
is idempotent, since the demo database survives restarts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.badges.issuance import find_credential
from lti_tool.store.models.catalogue import MicroCredentialVersion
from lti_tool.store.models.core import Context, Membership, Person, Platform

if TYPE_CHECKING:
    from lti_tool.demo_seed import SeedContext

log = logging.getLogger(__name__)
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" \
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
    from lti_tool.catalogue import importexport, service

    office = service.Doer(person_id=None, role="admin", label=DEMO_ACTOR)
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
    """Make the practice course's first learner hold the example micro-credential."""
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
    from lti_tool.catalogue.service import Doer, place
    from lti_tool.grades.evaluation import recognise_prior_learning

    offering = place(db, platform.id, context.id, version.id,
                     Doer(person_id=None, role="admin", label=DEMO_ACTOR))
    offering.grade_passback = True  # the practice LMS shows the result in its gradebook
    evidence = {outcome.code: {"evidence": "Demo: portfolio reviewed by the assessor.",
                               "level": outcome.levels[-1]["code"]}
                for outcome in version.outcomes}
    recognise_prior_learning(db, settings, offering.id, person.id, DEMO_ACTOR, evidence)
    db.flush()
