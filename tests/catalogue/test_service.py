"""The catalogue service on a real database: versions, workflow, revalidation, pathways."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lti_tool.catalogue import importexport, jobs, service
from lti_tool.domain.actors import Actor
from lti_tool.domain.catalogue import DesignPlan, OfferingSettings
from lti_tool.domain.errors import IllegalTransition, ValidationFailed
from lti_tool.errors import Conflict, Forbidden, NotFound
from lti_tool.store.models.catalogue import ApprovalEvent, MicroCredentialVersion
from lti_tool.store.models.core import Person
from tests.catalogue.conftest import EXAMPLES, make_context, make_platform

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def plan_from(name: str = "data-literacy-for-engineers.yaml", **changes) -> DesignPlan:
    text = (EXAMPLES / name).read_text()
    return dataclasses.replace(importexport.parse_plan(importexport.load_text(text)), **changes)


@pytest.fixture
def office(db, platform) -> Actor:
    person = Person(platform_id=platform.id, sub="office-1", name="Ayşe Yılmaz")
    db.add(person)
    db.flush()
    return Actor(person_id=person.id, role="admin", label="Ayşe Yılmaz")


def approved(db, platform_id: int, office: Actor, plan: DesignPlan | None = None,
             at: datetime = T0) -> MicroCredentialVersion:
    version = service.create(db, platform_id, plan or plan_from(), office)
    service.act(db, platform_id, version.id, "submit", office, now=at)
    return service.act(db, platform_id, version.id, "approve", office, now=at)


def test_create_stores_the_whole_plan_and_outcomes_of_returns_domain_los(db, platform,
                                                                          office) -> None:
    plan = plan_from()
    version = service.create(db, platform.id, plan, office)
    db.commit()
    assert (version.version, version.status) == (1, "draft")
    assert service.plan_of(version) == plan
    outcomes = service.outcomes_of(db, version.id)
    assert [o.code for o in outcomes] == ["LO1", "LO2", "LO3"]
    assert str(outcomes[2].rubric.levels[2].lower_bound) == "62.5"
    assert outcomes[0].rubric.attains("proficient")


def test_approval_records_who_and_when_and_sets_revalidation_three_years_on(db, platform,
                                                                             office) -> None:
    version = approved(db, platform.id, office)
    assert version.status == "approved"
    assert version.approved_at == T0 and version.approved_by_person_id == office.person_id
    assert version.revalidation_due == datetime(2029, 3, 2, 10, 0, tzinfo=UTC)
    events = service.history(db, platform.id, version.micro_credential_id)
    assert [(e.action, e.from_status, e.to_status) for e in events] == [
        ("create", None, "draft"), ("submit", "draft", "in_review"),
        ("approve", "in_review", "approved")]
    assert events[-1].actor_person_id == office.person_id


def test_only_the_office_approves_revalidates_or_retires(db, platform, office) -> None:
    version = service.create(db, platform.id, plan_from(), office)
    service.act(db, platform.id, version.id, "submit", office)
    instructor = Actor(person_id=None, role="instructor")
    for action in ("approve", "reject", "revalidate", "retire"):
        with pytest.raises(Forbidden):
            service.act(db, platform.id, version.id, action, instructor)
    with pytest.raises(Forbidden):
        service.create(db, platform.id, plan_from(code="OTHER"), instructor)
    assert version.status == "in_review"


def test_illegal_transitions_change_nothing(db, platform, office) -> None:
    version = service.create(db, platform.id, plan_from(), office)
    for action in ("approve", "revalidate", "retire", "reject"):
        with pytest.raises(IllegalTransition):
            service.act(db, platform.id, version.id, action, office)
    with pytest.raises(IllegalTransition):
        service.act(db, platform.id, version.id, "lapse", office)
    assert version.status == "draft"
    assert len(service.history(db, platform.id, version.micro_credential_id)) == 1


def test_rejection_returns_to_draft_and_editing_in_review_is_refused(db, platform,
                                                                     office) -> None:
    version = service.create(db, platform.id, plan_from(), office)
    service.act(db, platform.id, version.id, "submit", office)
    with pytest.raises(IllegalTransition, match="reject it back to draft"):
        service.update(db, platform.id, version.micro_credential_id,
                       plan_from(title="Changed"), office)
    service.act(db, platform.id, version.id, "reject", office, note="LO3 is not measurable")
    edited = service.update(db, platform.id, version.micro_credential_id,
                            plan_from(title="Changed"), office)
    assert edited.id == version.id and edited.title == "Changed" and edited.version == 1


def test_editing_an_approved_mc_makes_a_new_version_and_the_old_stays(db, platform,
                                                                     office) -> None:
    old = approved(db, platform.id, office)
    new = service.update(db, platform.id, old.micro_credential_id,
                         plan_from(title="Data Literacy for Engineers (2027)"), office)
    db.commit()
    assert (new.version, new.status, old.status) == (2, "draft", "approved")
    assert old.title == "Data Literacy for Engineers"
    assert [o.code for o in service.outcomes_of(db, old.id)] == ["LO1", "LO2", "LO3"]
    # The new version is edited in place until it is approved.
    again = service.update(db, platform.id, old.micro_credential_id,
                           plan_from(title="Data Literacy 2027"), office)
    assert again.id == new.id
    # Placement keeps offering the newest approved version.
    assert [v.id for v in service.approved_versions(db, platform.id)] == [old.id]
    service.act(db, platform.id, new.id, "submit", office)
    service.act(db, platform.id, new.id, "approve", office)
    assert [v.id for v in service.approved_versions(db, platform.id)] == [new.id]


def test_the_code_is_unique_per_platform_and_cannot_change(db, platform, office) -> None:
    version = service.create(db, platform.id, plan_from(), office)
    with pytest.raises(ValidationFailed, match="already exists"):
        service.create(db, platform.id, plan_from(), office)
    with pytest.raises(ValidationFailed, match="cannot change"):
        service.update(db, platform.id, version.micro_credential_id,
                       plan_from(code="NEW-1"), office)
    other = make_platform(db)
    assert service.create(db, other.id, plan_from(), office).platform_id == other.id
    with pytest.raises(NotFound):
        service.get_micro_credential(db, other.id, version.micro_credential_id)


def test_lapse_overdue_and_revalidation_issue_held_passes(db, platform, office, settings,
                                                          monkeypatch) -> None:
    version = approved(db, platform.id, office)
    due = version.revalidation_due
    assert service.due_for_revalidation(db, platform.id, 90, now=due - timedelta(days=91)) == []
    assert service.due_for_revalidation(db, platform.id, 90, now=due - timedelta(days=89)) \
        == [version]
    assert service.lapse_overdue(db, now=due - timedelta(seconds=1)) == []
    assert service.lapse_overdue(db, now=due) == [version.id]
    assert version.status == "lapsed" and not service.is_issuing(db, version.id)
    assert service.due_for_revalidation(db, platform.id, 90, now=due) == [version]
    held: list[int] = []
    later = due + timedelta(days=3)
    service.act(db, platform.id, version.id, "revalidate", office, settings=settings,
                release_held=lambda db_, settings_, mc_version_id: held.append(mc_version_id),
                now=later)
    assert held == [version.id]
    assert version.status == "approved" and service.is_issuing(db, version.id)
    assert version.revalidated_at == later and version.revalidation_due == later.replace(
        year=later.year + 3)
    lapse = db.scalar(select(ApprovalEvent).where(ApprovalEvent.action == "lapse"))
    assert lapse.actor_label == "scheduler" and lapse.actor_person_id is None


def test_the_daily_job_lapses_in_its_own_transaction(runtime, db, platform, office) -> None:
    version = approved(db, platform.id, office)
    db.commit()
    assert jobs.lapse_overdue_job(runtime, now=version.revalidation_due) == [version.id]
    db.expire_all()
    assert db.get(MicroCredentialVersion, version.id).status == "lapsed"

    from lti_tool.jobs.registry import registry

    [spec] = [p for p in registry().periodic if p.kind == jobs.JOB_ID]
    assert spec.cron == "15 2 * * *"  # daily at 02:15 UTC


def test_an_earlier_revalidation_date_is_allowed_but_not_a_later_one(db, platform,
                                                                     office) -> None:
    version = service.create(db, platform.id, plan_from(), office)
    service.act(db, platform.id, version.id, "submit", office)
    with pytest.raises(ValidationFailed, match="revalidation_due"):
        service.act(db, platform.id, version.id, "approve", office, now=T0,
                    due=T0 + timedelta(days=3 * 366))
    assert version.status == "in_review"
    service.act(db, platform.id, version.id, "approve", office, now=T0,
                due=T0 + timedelta(days=365))
    assert version.revalidation_due == T0 + timedelta(days=365)


def test_pathways_reject_cycles_and_unknown_components(db, platform, office) -> None:
    first = approved(db, platform.id, office)
    second = service.create(db, platform.id, plan_from(
        "technical-report-writing-embedded.yaml", requires=("DLE-101",)), office)
    assert [mc.code for mc in service.requirements_of(db, second.id)] == ["DLE-101"]
    with pytest.raises(ValidationFailed) as caught:
        service.update(db, platform.id, first.micro_credential_id,
                       plan_from(requires=("TRW-IE310", "NOPE")), office)
    found = {p.path: p.message for p in caught.value.problems}
    assert "DLE-101 -> TRW-IE310 -> DLE-101" in found["requires"]
    assert "NOPE" in found["requires[1]"]
    service.act(db, platform.id, second.id, "submit", office)
    service.act(db, platform.id, second.id, "approve", office)
    assert service.pathways_requiring(db, first.micro_credential_id) == [second]


def test_placing_creates_one_offering_per_course_and_settings_are_checked(db, platform,
                                                                          office) -> None:
    version = approved(db, platform.id, office,
                       plan_from("technical-report-writing-embedded.yaml"))
    context = make_context(db, platform)
    offering = service.place(db, platform.id, context.id, version.id, office)
    assert service.place(db, platform.id, context.id, version.id, office).id == offering.id
    assert offering.reevaluation_policy == "instructor"
    with pytest.raises(ValidationFailed) as caught:
        service.configure_offering(db, offering, OfferingSettings(None, "automatic", 7, (42,)))
    assert [p.path for p in caught.value.problems] == ["grade_item_ids[0]"]
    closes = datetime(2026, 6, 12, 21, tzinfo=UTC)
    service.configure_offering(db, offering, OfferingSettings(closes, "learner_request", 10))
    db.commit()
    assert (offering.window_closes_at, offering.reevaluation_policy) == (closes,
                                                                         "learner_request")
    draft = service.create(db, platform.id, plan_from(code="DRAFT-1"), office)
    with pytest.raises(Conflict):
        service.place(db, platform.id, context.id, draft.id, office)
    other = make_platform(db)
    with pytest.raises(NotFound):
        service.place(db, other.id, context.id, version.id, office)
