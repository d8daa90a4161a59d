"""The EU micro-credential (Annex I) elements of the Design Plan: rules, approval, migration.

A plan that lacks a mandatory element cannot be approved (the refusal names it); a plan saved
before the elements existed (as migration 0006_eu_elements leaves it) is listed as incomplete,
holds its passes, and is completed in place by the Office, which issues them.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given

from lti_tool.catalogue import service
from lti_tool.domain import catalogue as rules
from lti_tool.domain.actors import Actor
from lti_tool.domain.catalogue import AwardingBody
from lti_tool.domain.errors import ValidationFailed
from lti_tool.store.models.badges import Credential, HeldPass
from lti_tool.store.models.core import Person
from tests.catalogue.strategies import plans, relaxed
from tests.catalogue.test_service import approved, office, plan_from  # noqa: F401

# --- domain rules ---------------------------------------------------------------------------


@given(plan=plans())
@relaxed
def test_generated_plans_are_complete_and_valid(plan) -> None:
    assert rules.annex_gaps(plan) == [] and plan.problems() == []


@pytest.mark.parametrize(("change", "missing"), [
    ({"participation_form": ""}, "form of participation"),
    ({"quality_assurance": " "}, "type of quality assurance"),
    ({"assessment_methods": ()}, "type of assessment"),
    ({"outcomes": ()}, "learning outcomes"),
    ({"title": ""}, "title"),
])
def test_annex_gaps_name_what_is_missing(change, missing) -> None:
    assert rules.annex_gaps(dataclasses.replace(plan_from(), **change)) == [missing]


def test_new_elements_are_validated_like_the_others() -> None:
    plan = dataclasses.replace(
        plan_from(), supervision="proctored", qf_ehea_cycle="fourth", learning_setting="x",
        overall_result="average", region="x" * 101,
        co_awarding_bodies=(AwardingBody("", "Germany", "", "ftp://x"),
                            AwardingBody("B", "DE", "DE1"), AwardingBody("C", "DE", "DE1")))
    paths = {p.path for p in plan.problems()}
    assert {"supervision", "qf_ehea_cycle", "learning_setting", "overall_result", "region",
            "co_awarding_bodies[0].name", "co_awarding_bodies[0].country",
            "co_awarding_bodies[0].legal_identifier", "co_awarding_bodies[0].url",
            "co_awarding_bodies[2].legal_identifier"} <= paths


def test_lowest_level_needs_one_level_scale() -> None:
    plan = plan_from(overall_result="lowest_level")
    first = plan.outcomes[0]
    other = dataclasses.replace(plan.outcomes[1], rubric=dataclasses.replace(
        first.rubric, levels=first.rubric.levels[:-1], threshold=first.rubric.levels[0].code))
    broken = dataclasses.replace(plan, outcomes=(first, other))
    assert "overall_result" in {p.path for p in broken.problems()}


def test_overall_result_is_the_lowest_required_level() -> None:
    outcomes = (("LO1", ("a", "b", "c"), True), ("LO2", ("a", "b", "c"), True),
                ("LO3", ("a", "b", "c"), False))
    assert rules.overall_result("lowest_level", outcomes,
                                {"LO1": "c", "LO2": "b", "LO3": "a"}) == "b"
    assert rules.overall_result("pass_fail", outcomes, {}) == "passed"
    assert rules.overall_result("", outcomes, {"LO1": "c"}) is None
    assert rules.overall_result("lowest_level", outcomes, {"LO1": "c"}) is None


def test_only_filling_empty_annex_elements_counts_as_completion() -> None:
    old = plan_from(participation_form="", prerequisites="")
    assert rules.fills_gaps_only(old, dataclasses.replace(old, participation_form="online",
                                                          prerequisites="None"))
    assert not rules.fills_gaps_only(old, dataclasses.replace(
        old, participation_form="online", title="Another title"))
    assert not rules.fills_gaps_only(old, old)


# --- the workflow ---------------------------------------------------------------------------


def _migrated(db, platform, doer, status: str = "approved",
              code: str = "DLE-101"):
    """A version as migration 0006 leaves a plan saved without a form of participation."""
    version = approved(db, platform.id, doer, plan_from(code=code))
    version.participation_form = ""
    version.status = status
    db.flush()
    return version


def test_a_plan_missing_an_element_cannot_be_submitted_approved_or_revalidated(
        db, platform, office) -> None:  # noqa: F811
    version = service.create(db, platform.id, plan_from(), office)
    version.participation_form = ""
    for action in ("submit",):
        with pytest.raises(ValidationFailed, match="form of participation"):
            service.act(db, platform.id, version.id, action, office)
    version.status = "in_review"
    with pytest.raises(ValidationFailed, match=r"cannot approve .*form of participation"):
        service.act(db, platform.id, version.id, "approve", office)
    assert version.status == "in_review" and version.approved_at is None
    migrated = _migrated(db, platform, office, "lapsed", code="DLE-102")
    with pytest.raises(ValidationFailed, match="form of participation"):
        service.act(db, platform.id, migrated.id, "revalidate", office)


def test_incomplete_plans_are_listed_and_refused_on_the_office_pages(people) -> None:
    office_caller = people.session("admin")
    db = people.db
    person = db.get(Person, office_caller.person_id)
    doer = Actor(person_id=person.id, role="admin")
    version = service.create(db, office_caller.platform_id, plan_from(), doer)
    service.act(db, office_caller.platform_id, version.id, "submit", doer)
    version.participation_form = ""
    db.commit()
    listing = office_caller.get("/admin/microcredentials").get_data(as_text=True)
    assert "incomplete" in listing and "Missing: form of participation" in listing
    page = office_caller.get(f"/admin/microcredentials/{version.micro_credential_id}")
    assert "form of participation" in page.get_data(as_text=True)
    reply = office_caller.post(f"/admin/microcredentials/{version.micro_credential_id}"
                               f"/versions/{version.id}/approve", data={})
    assert reply.status_code == 400 and b"form of participation" in reply.data
    db.refresh(version)
    assert version.status == "in_review"
    turkish = office_caller.get("/admin/microcredentials?lang=tr").get_data(as_text=True)
    assert "Eksik: katılım biçimi" in turkish


def test_completing_a_migrated_approved_plan_keeps_the_version_and_issues_held_passes(
        db, platform, office, settings) -> None:  # noqa: F811
    version = _migrated(db, platform, office)
    learner = Person(platform_id=platform.id, sub="learner-9", name="Can Demir")
    db.add(learner)
    db.flush()
    from lti_tool.badges import issuance

    levels = {o.code: o.levels[-1]["code"] for o in version.outcomes}
    held = issuance.issue_on_pass(db, settings, person_id=learner.id, mc_version_id=version.id,
                                  offering_id=None, outcome_levels=levels,
                                  passed_at=version.approved_at)
    assert held is None  # no credential with a missing element: the pass is held
    assert db.query(HeldPass).filter_by(mc_version_id=version.id).count() == 1
    completed = service.update(db, platform.id, version.micro_credential_id,
                               plan_from(participation_form="online"), office,
                               settings=settings, release_held=issuance.issue_held)
    assert (completed.id, completed.version, completed.status) == (version.id, 1, "approved")
    assert completed.events[-1].action == "complete"
    credential = db.query(Credential).filter_by(mc_version_id=version.id).one()
    assert "920fbb3cbe" in credential.document  # online, the EU's IRI
    # Any other change of an approved plan still makes a new version.
    newer = service.update(db, platform.id, version.micro_credential_id,
                           plan_from(participation_form="online", title="Data literacy II"),
                           office, settings=settings, release_held=issuance.issue_held)
    assert newer.version == 2 and newer.status == "draft"
