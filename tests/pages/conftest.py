"""Fixtures for the pages: a platform with one course, people in each role, and sessions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lti_tool.store.models.core import Context, Deployment, Membership, Person, Platform
from lti_tool.web.auth import start_session


@dataclass
class Course:
    """Ids of a seeded platform/course and a session token per role."""

    platform_id: int
    context_id: int
    people: dict[str, int]
    tokens: dict[str, str]


def seed_course(db, *, issuer: str = "https://lms.example.edu", learners: int = 2,
                locale: str = "en") -> Course:
    """One platform, one course, an instructor, an Office admin and `learners` learners."""
    platform = Platform(issuer=issuer, client_id="client-1", name="Example LMS",
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
    people: dict[str, int] = {}
    roles = ["instructor", "admin"] + [f"learner{i}" for i in range(1, learners + 1)]
    for key in roles:
        person = Person(platform_id=platform.id, sub=f"sub-{key}", name=key.title(),
                        given_name=key.title(), family_name="Example")
        db.add(person)
        db.flush()
        people[key] = person.id
        role = "learner" if key.startswith("learner") else key
        db.add(Membership(context_id=context.id, person_id=person.id, role=role))
    tokens = {
        key: start_session(db, platform_id=platform.id, person_id=pid, context_id=context.id,
                           resource_link_id=None,
                           role="learner" if key.startswith("learner") else key,
                           locale=locale)
        for key, pid in people.items()
    }
    db.commit()
    return Course(platform.id, context.id, people, tokens)


@pytest.fixture
def course(db) -> Course:
    return seed_course(db)
