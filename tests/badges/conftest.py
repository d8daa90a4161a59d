"""Fixtures of the badges tests: a platform, learners and approved micro-credentials."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import jsonschema
import pytest
from sqlalchemy.orm import Session

from lti_tool.badges import issuance
from lti_tool.settings import Settings
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import (
    LearningOutcome,
    MicroCredential,
    MicroCredentialVersion,
    PathwayComponent,
)
from lti_tool.store.models.core import Person, Platform
from tests.conftest import SPEC, institution_for_new_platform

PASSED_AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LEVELS = [{"code": "beginning", "label": "Beginning", "lower_bound": "0", "descriptor": "Not yet"},
          {"code": "developing", "label": "Developing", "lower_bound": "50"},
          {"code": "proficient", "label": "Proficient", "lower_bound": "70",
           "descriptor": "Meets the outcome"},
          {"code": "exemplary", "label": "Exemplary", "lower_bound": "90"}]
SCHEMA = json.loads((SPEC / "openbadges/schemas/achievementcredential.json").read_text())


def assert_schema_valid(document: dict) -> None:
    """1EdTech's own schema file, with format checking, as the issue requires."""
    validator = jsonschema.Draft201909Validator(
        SCHEMA, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, errors
    assert isinstance(document["proof"], list)


@dataclass
class World:
    """What a badges test starts from."""

    db: Session
    settings: Settings
    platform: Platform

    def person(self, sub: str = "learner-1", email: str | None = "ada@example.edu",
               name: str = "Ada Lovelace") -> Person:
        person = Person(platform_id=self.platform.id, sub=sub, name=name, email=email)
        self.db.add(person)
        self.db.flush()
        return person

    def micro_credential(self, code: str = "DATA-101", *, status: str = "approved",
                         outcomes: int = 2, requires: tuple[MicroCredential, ...] = (),
                         ects: str | None = "2") -> MicroCredentialVersion:
        mc = MicroCredential(platform_id=self.platform.id, institution_id=self.db.get(Platform,
                             self.platform.id).institution_id, code=code)
        version = MicroCredentialVersion(
            platform_id=self.platform.id, institution_id=mc.institution_id, micro_credential=mc,
            version=1, status=status,
            title=f"{code}: Data analysis basics", description="Cleaning and analysing data.",
            kind="course", language="en", tqf_level=5, eqf_level=5,
            workload_hours=Decimal("25"), ects=Decimal(ects) if ects else None,
            teaching_methods=["Online, self-paced"], assessment_methods=["Project", "Quiz"],
            field_of_study="Data science", isced_f_code="0542", participation_form="online",
            quality_assurance="Annual review by the Micro-credentials Office",
            stackability="Counts towards the Data pathway",
            prerequisites="Basic spreadsheet skills", supervision="supervised_online_id",
            recognition="Recognised in the BSc Economics", region="Ege",
            qf_ehea_cycle="first", learning_setting="non_formal",
            further_information="https://www.example.edu/mc", overall_result="lowest_level",
            co_awarding_bodies=[{"name": "Hochschule Beispiel", "country": "DE",
                                 "legal_identifier": "DE123456789", "url": ""}])
        for index in range(outcomes):
            version.outcomes.append(LearningOutcome(
                platform_id=self.platform.id, position=index, code=f"LO{index + 1}",
                statement=f"Outcome {index + 1} statement.", domain="skill", required=True,
                levels=LEVELS, threshold="proficient"))
        for index, required in enumerate(requires):
            version.components.append(PathwayComponent(
                platform_id=self.platform.id, required_micro_credential_id=required.id,
                position=index))
        self.db.add(version)
        self.db.flush()
        return version


@pytest.fixture
def world(db: Session, settings: Settings) -> World:
    platform = Platform(institution_id=institution_for_new_platform(db).id, status="active",
                        issuer="https://lms.example.edu", client_id="tool",
                        auth_login_url="https://lms.example.edu/auth",
                        auth_token_url="https://lms.example.edu/token")
    db.add(platform)
    db.flush()
    return World(db=db, settings=settings, platform=platform)


def issue_passed(world: World, sub: str, version) -> Credential:
    """Issue `version`'s credential to a new person `sub` who passed LO1."""
    person = world.person(sub, f"{sub}@example.edu")
    credential = issuance.issue_on_pass(world.db, world.settings, person_id=person.id,
                                        mc_version_id=version.id, offering_id=None,
                                        outcome_levels={"LO1": "proficient"},
                                        passed_at=PASSED_AT)
    assert credential is not None
    return credential
