"""The catalogue's use cases: define, version, approve, revalidate and place micro-credentials.

The catalogue belongs to the institution: catalogue functions take an `Owner` (the id of the
registration an Office acts through, or a `Scope` naming the institution for the CLI) and an id
of another institution's catalogue is "not found". Offerings stay per registration and course.
Rules come from `lti_tool.domain.catalogue`; this module stores their results and records who
did what (Art. 12/3-a, Art. 13: the Office verifies, approves and re-verifies).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from lti_tool.catalogue import importexport
from lti_tool.domain import catalogue as rules
from lti_tool.domain.actors import SCHEDULER, Actor
from lti_tool.domain.catalogue import DesignPlan, OfferingSettings
from lti_tool.domain.errors import FieldProblem, IllegalTransition, ValidationFailed
from lti_tool.domain.rubric import PerformanceLevel, Rubric
from lti_tool.errors import Conflict, Forbidden, NotFound
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import (
    ApprovalEvent,
    LearningOutcome,
    MicroCredential,
    MicroCredentialVersion,
    Offering,
    PathwayComponent,
)
from lti_tool.store.models.core import AuditEntry, Context, Platform
from lti_tool.store.models.grades import GradeItem

log = logging.getLogger(__name__)




# --- whose catalogue -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The catalogue acted on: an institution's, through one of its registrations (an Office
    in the LMS) or through none (the operator's CLI)."""

    institution_id: int
    platform_id: int | None = None


# An int is the id of the registration the caller acts through; its institution's catalogue.
Owner = int | Scope


def scope_of(db: Session, owner: Owner) -> Scope:
    if isinstance(owner, Scope):
        return owner
    platform = db.get(Platform, owner)
    if platform is None:
        raise NotFound("No such platform registration.")
    return Scope(institution_id=platform.institution_id, platform_id=platform.id)


# --- reading --------------------------------------------------------------------------------


def list_micro_credentials(db: Session, owner: Owner) -> list[MicroCredential]:
    institution_id = scope_of(db, owner).institution_id
    return list(db.scalars(
        select(MicroCredential).where(MicroCredential.institution_id == institution_id)
        .options(selectinload(MicroCredential.versions)).order_by(MicroCredential.code)))


def get_micro_credential(db: Session, owner: Owner, mc_id: int) -> MicroCredential:
    mc = db.get(MicroCredential, mc_id)
    if mc is None or mc.institution_id != scope_of(db, owner).institution_id:
        raise NotFound("No such micro-credential.")
    return mc


def find_by_code(db: Session, owner: Owner, code: str) -> MicroCredential | None:
    """Codes are unique in the institution's catalogue (every registration of it)."""
    return db.scalar(select(MicroCredential).where(
        MicroCredential.institution_id == scope_of(db, owner).institution_id,
        MicroCredential.code == code))


def get_version(db: Session, owner: Owner, version_id: int) -> MicroCredentialVersion:
    version = db.get(MicroCredentialVersion, version_id)
    if version is None or version.institution_id != scope_of(db, owner).institution_id:
        raise NotFound("No such micro-credential version.")
    return version


def outcome_of(row: LearningOutcome) -> rules.LearningOutcome:
    levels = tuple(PerformanceLevel(code=lv["code"], label=lv["label"],
                                    lower_bound=Decimal(str(lv["lower_bound"])),
                                    descriptor=lv.get("descriptor", ""))
                   for lv in row.levels)
    return rules.LearningOutcome(code=row.code, statement=row.statement, domain=row.domain,
                                 rubric=Rubric(levels=levels, threshold=row.threshold),
                                 required=row.required)


def outcomes_of(db: Session, mc_version_id: int) -> list[rules.LearningOutcome]:
    """The domain LOs (code, required, Rubric) of one version, in plan order."""
    rows = db.scalars(select(LearningOutcome).where(LearningOutcome.version_id == mc_version_id)
                      .order_by(LearningOutcome.position))
    return [outcome_of(row) for row in rows]


def plan_of(version: MicroCredentialVersion) -> DesignPlan:
    """The Design Plan a stored version holds (for export and the edit form)."""
    return DesignPlan(
        code=version.code, title=version.title, description=version.description,
        kind=version.kind, language=version.language, image=version.image,
        purpose=version.purpose, target_group=version.target_group,
        tqf_level=version.tqf_level, eqf_level=version.eqf_level,
        workload_hours=version.workload_hours, ects=version.ects,
        teaching_methods=tuple(version.teaching_methods),
        assessment_methods=tuple(version.assessment_methods),
        content_plan=version.content_plan, stackability=version.stackability,
        recognition=version.recognition, quality_assurance=version.quality_assurance,
        field_of_study=version.field_of_study, isced_f_code=version.isced_f_code,
        participation_form=version.participation_form,
        prerequisites=version.prerequisites, supervision=version.supervision,
        qf_ehea_cycle=version.qf_ehea_cycle, learning_setting=version.learning_setting,
        region=version.region, further_information=version.further_information,
        overall_result=version.overall_result,
        co_awarding_bodies=tuple(
            rules.AwardingBody(name=str(body.get("name", "")),
                               country=str(body.get("country", "")),
                               legal_identifier=str(body.get("legal_identifier", "")),
                               url=str(body.get("url", "")))
            for body in version.co_awarding_bodies or []),
        requires=tuple(component.required.code for component in version.components),
        outcomes=tuple(outcome_of(row) for row in version.outcomes),
    )


def annex_gaps_of(version: MicroCredentialVersion) -> list[str]:
    """The mandatory Annex I elements a stored version lacks (a migrated plan), by name."""
    return rules.annex_gaps(plan_of(version))


def is_issuing(db: Session, mc_version_id: int) -> bool:
    """Only an approved version issues badges; a lapsed or retired one holds passes."""
    version = db.get(MicroCredentialVersion, mc_version_id)
    return version is not None and version.status in rules.ISSUING_STATUSES


def history(db: Session, owner: Owner, mc_id: int) -> list[ApprovalEvent]:
    """Every recorded action on every version of a micro-credential, in the order taken."""
    mc = get_micro_credential(db, owner, mc_id)
    return list(db.scalars(
        select(ApprovalEvent).join(MicroCredentialVersion)
        .where(MicroCredentialVersion.micro_credential_id == mc.id)
        .order_by(ApprovalEvent.id)))


def due_for_revalidation(db: Session, owner: Owner,
                         within_days: int = rules.REVALIDATION_NOTICE_DAYS,
                         now: datetime | None = None) -> list[MicroCredentialVersion]:
    """Approved versions due within `within_days`, and lapsed ones (overdue), soonest first."""
    limit = (now or utcnow()) + timedelta(days=within_days)
    institution_id = scope_of(db, owner).institution_id
    return list(db.scalars(
        select(MicroCredentialVersion)
        .where(MicroCredentialVersion.institution_id == institution_id,
               MicroCredentialVersion.status.in_(("approved", "lapsed")),
               MicroCredentialVersion.revalidation_due <= limit)
        .order_by(MicroCredentialVersion.revalidation_due)))


def approved_versions(db: Session, owner: Owner) -> list[MicroCredentialVersion]:
    """The newest approved version of each micro-credential: what can be placed in a course."""
    newest: dict[int, MicroCredentialVersion] = {}
    institution_id = scope_of(db, owner).institution_id
    for version in db.scalars(
            select(MicroCredentialVersion)
            .where(MicroCredentialVersion.institution_id == institution_id,
                   MicroCredentialVersion.status == "approved")
            .order_by(MicroCredentialVersion.version)):
        newest[version.micro_credential_id] = version
    return sorted(newest.values(), key=lambda v: v.code)


def requirements_of(db: Session, mc_version_id: int) -> list[MicroCredential]:
    """The micro-credentials a pathway version requires (empty for an ordinary MC)."""
    return list(db.scalars(
        select(MicroCredential).join(PathwayComponent,
                                     PathwayComponent.required_micro_credential_id
                                     == MicroCredential.id)
        .where(PathwayComponent.version_id == mc_version_id)
        .order_by(PathwayComponent.position)))


def pathways_requiring(db: Session, micro_credential_id: int) -> list[MicroCredentialVersion]:
    """Approved pathway versions that list this micro-credential (badges checks them)."""
    return list(db.scalars(
        select(MicroCredentialVersion).join(PathwayComponent,
                                            PathwayComponent.version_id
                                            == MicroCredentialVersion.id)
        .where(PathwayComponent.required_micro_credential_id == micro_credential_id,
               MicroCredentialVersion.status == "approved")))


# --- defining and editing -------------------------------------------------------------------


def _require_office(by: Actor, action: str) -> None:
    if by.role != "admin":
        raise Forbidden(f"Only the Micro-credentials Office may {action} micro-credentials.")


def _requirement_graph(db: Session, owner: Owner) -> dict[str, tuple[str, ...]]:
    """Each MC's code -> the codes its newest non-retired version requires."""
    graph: dict[str, tuple[str, ...]] = {}
    for mc in list_micro_credentials(db, owner):
        live = [v for v in mc.versions if v.status != "retired"]
        graph[mc.code] = tuple(c.required.code for c in live[-1].components) if live else ()
    return graph


def check_plan(db: Session, owner: Owner, plan: DesignPlan) -> None:
    """Raise ValidationFailed with every problem: the plan's own and its pathway's."""
    found = plan.problems()
    found += [p for p in _pathway_problems(db, owner, plan.code, plan.requires)
              if p not in found]
    if found:
        raise ValidationFailed(found)


def _pathway_problems(db: Session, owner: Owner, code: str,
                      requires: tuple[str, ...]) -> list[FieldProblem]:
    return rules.pathway_problems(code, requires, _requirement_graph(db, owner))


def plan_from_document(db: Session, owner: Owner, data: object) -> DesignPlan:
    """Parse an import file or form, adding pathway problems (unknown codes, cycles) to the
    schema and domain ones even when those already fail, so one answer lists everything."""
    try:
        plan = importexport.parse_plan(data)
    except ValidationFailed as failed:
        found = list(failed.problems)
        code = data.get("code") if isinstance(data, Mapping) else None
        requires = data.get("requires") if isinstance(data, Mapping) else None
        if isinstance(code, str) and isinstance(requires, list) \
                and all(isinstance(item, str) for item in requires):
            found += [p for p in _pathway_problems(db, owner, code.strip(),
                                                   tuple(r.strip() for r in requires))
                      if p not in found]
        raise ValidationFailed(found) from None
    check_plan(db, owner, plan)
    return plan


def create(db: Session, owner: Owner, plan: DesignPlan, by: Actor) -> MicroCredentialVersion:
    """A new micro-credential of the institution's catalogue, with its first version (draft)."""
    _require_office(by, "define")
    scope = scope_of(db, owner)
    problems: list[FieldProblem] = []
    if find_by_code(db, scope, plan.code) is not None:
        problems.append(FieldProblem("code", f"a micro-credential with code {plan.code!r} "
                                             "already exists"))
    try:
        check_plan(db, scope, plan)
    except ValidationFailed as failed:
        problems += failed.problems
    if problems:
        raise ValidationFailed(problems)
    mc = MicroCredential(platform_id=scope.platform_id, code=plan.code,
                         institution_id=scope.institution_id)
    try:
        with db.begin_nested():
            db.add(mc)
            db.flush()
    except IntegrityError as exc:  # a concurrent create of the same code
        raise ValidationFailed([FieldProblem("code", f"a micro-credential with code "
                                                     f"{plan.code!r} already exists")]) from exc
    return _new_version(db, mc, plan, by, number=1)


ReleaseHeld = Callable[[Session, Settings, int], object]


def update(db: Session, owner: Owner, mc_id: int, plan: DesignPlan,
           by: Actor, settings: Settings | None = None,
           release_held: ReleaseHeld | None = None) -> MicroCredentialVersion:
    """Edit the newest version: a draft in place; an approved or lapsed one as a new version,
    so credentials issued under the old version keep pointing at what they certified.

    One exception: an approved or lapsed version that lacks a mandatory Annex I element (a
    migrated plan) is completed in place when the edit only fills empty Annex I elements
    (`rules.fills_gaps_only`); passes held while it was incomplete are then released by
    `release_held(db, settings, version_id)` (the entry point wires in badges' `issue_held`).
    """
    _require_office(by, "edit")
    mc = get_micro_credential(db, owner, mc_id)
    if plan.code != mc.code:
        raise ValidationFailed([FieldProblem("code", "the code of an existing "
                                                     "micro-credential cannot change")])
    head = mc.head
    if head.status not in rules.EDITABLE_IN_PLACE | rules.EDITABLE_AS_NEW_VERSION:
        raise IllegalTransition(
            f"version {head.version} is {head.status}: "
            + ("reject it back to draft before editing" if head.status == "in_review"
               else "a retired micro-credential cannot be edited"))
    check_plan(db, owner, plan)
    if head.status in rules.EDITABLE_IN_PLACE:
        _write(db, head, plan)
        _record(db, head, "edit", head.status, head.status, by)
        return head
    old = plan_of(head)
    if rules.annex_gaps(old) and rules.fills_gaps_only(old, plan):
        _write(db, head, plan)
        _record(db, head, "complete", head.status, head.status, by,
                note="Annex I elements completed: " + ", ".join(rules.annex_gaps(old)))
        if settings is not None and release_held is not None and head.status == "approved":
            release_held(db, settings, head.id)
        return head
    return _new_version(db, mc, plan, by, number=head.version + 1)


def save(db: Session, owner: Owner, plan: DesignPlan, by: Actor,
         settings: Settings | None = None) -> MicroCredentialVersion:
    """Create or update by code (what `mc import` does)."""
    mc = find_by_code(db, owner, plan.code)
    if mc is None:
        return create(db, owner, plan, by)
    return update(db, owner, mc.id, plan, by, settings)  # held passes: see update


def _new_version(db: Session, mc: MicroCredential, plan: DesignPlan, by: Actor,
                 number: int) -> MicroCredentialVersion:
    version = MicroCredentialVersion(platform_id=mc.platform_id,
                                     micro_credential=mc, institution_id=mc.institution_id,
                                     version=number, status="draft",
                                     created_by_person_id=by.person_id)
    db.add(version)
    _write(db, version, plan)
    _record(db, version, "create", None, "draft", by)
    return version


def _write(db: Session, version: MicroCredentialVersion, plan: DesignPlan) -> None:
    """Copy a checked plan onto a version (replacing its outcomes and components)."""
    for name in ("title", "description", "kind", "language", "image", "purpose",
                 "target_group", "tqf_level", "eqf_level", "workload_hours", "ects",
                 "content_plan", "stackability", "recognition", "quality_assurance",
                 "field_of_study", "isced_f_code", "participation_form", "prerequisites",
                 "supervision", "qf_ehea_cycle", "learning_setting", "region",
                 "further_information", "overall_result"):
        setattr(version, name, getattr(plan, name))
    version.co_awarding_bodies = [
        {"name": body.name, "country": body.country, "legal_identifier": body.legal_identifier,
         "url": body.url} for body in plan.co_awarding_bodies]
    version.teaching_methods = list(plan.teaching_methods)
    version.assessment_methods = list(plan.assessment_methods)
    version.outcomes.clear()
    version.components.clear()
    db.flush()  # delete the old rows before unique (version, code) rows come back
    for position, outcome in enumerate(plan.outcomes):
        version.outcomes.append(LearningOutcome(
            platform_id=version.platform_id, position=position, code=outcome.code,
            statement=outcome.statement, domain=outcome.domain, required=outcome.required,
            threshold=outcome.rubric.threshold,
            levels=[{"code": lv.code, "label": lv.label, "descriptor": lv.descriptor,
                     "lower_bound": str(lv.lower_bound)} for lv in outcome.rubric.levels]))
    for position, code in enumerate(plan.requires):
        required = find_by_code(db, Scope(version.institution_id), code)
        assert required is not None  # check_plan has reported unknown codes
        version.components.append(PathwayComponent(
            platform_id=version.platform_id, required_micro_credential_id=required.id,
            position=position))
    db.flush()


def _record(db: Session, version: MicroCredentialVersion, action: str, before: str | None,
            after: str, by: Actor, note: str = "", at: datetime | None = None,
            audit_details: dict | None = None) -> None:
    db.add(ApprovalEvent(platform_id=version.platform_id, version=version, action=action,
                         from_status=before, to_status=after, actor_person_id=by.person_id,
                         actor_label=by.label, note=note, at=at or utcnow()))
    # The Office's audit log shows the workflow too ("approved DLE-101, version 2").
    db.add(AuditEntry(institution_id=version.institution_id, platform_id=version.platform_id,
                      actor_person_id=by.person_id,
                      actor_label=by.label or "", action=f"microcredential.{action}",
                      target=f"{version.code} v{version.version}",
                      details={"from": before, "to": after, **({"note": note} if note else {}),
                               **(audit_details or {})},
                      at=at or utcnow()))


# --- the workflow ---------------------------------------------------------------------------


def act(db: Session, owner: Owner, version_id: int, action: str, by: Actor, *,
        settings: Settings | None = None, release_held: ReleaseHeld | None = None,
        note: str = "", due: datetime | None = None, now: datetime | None = None,
        audit_details: dict | None = None) -> MicroCredentialVersion:
    """Apply one workflow action (submit, reject, approve, revalidate, retire) to a version.

    Approval and revalidation set the next revalidation date (at most three years on,
    Art. 4/1-ş) and record who and when. After a lapsed version is revalidated, the passes
    held meanwhile are released by `release_held(db, settings, version_id)`: the entry point
    wires in badges' `issue_held` (the catalogue sits below badges and never imports it).
    """
    if action == "lapse" or action not in rules.TRANSITIONS:
        raise IllegalTransition(f"{action!r} is not an action a person can take")
    if action in rules.OFFICE_ACTIONS or action == "submit":
        _require_office(by, action)
    version = get_version(db, owner, version_id)
    now = now or utcnow()
    before = version.status
    after = rules.next_status(before, action)
    if action in ("submit", "approve", "revalidate"):
        _refuse_incomplete(version, action)
    if action in ("approve", "revalidate"):
        version.revalidation_due = rules.revalidation_due(now, due)
        if action == "approve":
            version.approved_at, version.approved_by_person_id = now, by.person_id
        else:
            version.revalidated_at, version.revalidated_by_person_id = now, by.person_id
            version.lapsed_at = None
    elif action == "retire":
        version.retired_at = now
    version.status = after
    _record(db, version, action, before, after, by, note=note, at=now,
            audit_details=audit_details)
    db.flush()
    if action == "revalidate" and before == "lapsed" and settings is not None \
            and release_held is not None:
        release_held(db, settings, version.id)
    return version


def _refuse_incomplete(version: MicroCredentialVersion, action: str) -> None:
    """A plan that lacks a mandatory Annex I element cannot be submitted, approved or
    revalidated: every credential must state each element (Art. 4/1-c, Art. 11/2)."""
    missing = annex_gaps_of(version)
    if missing:
        raise ValidationFailed([FieldProblem(
            "plan", f"cannot {action} {version.code} v{version.version}: the Design Plan lacks "
                    f"the mandatory EU micro-credential element(s) {', '.join(missing)} "
                    "(Council Recommendation 2022/C 243/02, Annex I)")])



def lapse_overdue(db: Session, now: datetime | None = None) -> list[int]:
    """Approved versions past their revalidation date become `lapsed` and stop issuing.

    Runs across every platform (the daily scheduler job); returns the lapsed version ids.
    """
    now = now or utcnow()
    overdue = db.scalars(select(MicroCredentialVersion).where(
        MicroCredentialVersion.status == "approved",
        MicroCredentialVersion.revalidation_due <= now).with_for_update(skip_locked=True))
    lapsed: list[int] = []
    for version in overdue:
        version.status = rules.next_status(version.status, "lapse")
        version.lapsed_at = now
        _record(db, version, "lapse", "approved", version.status, SCHEDULER, at=now,
                note=f"revalidation was due {version.revalidation_due:%Y-%m-%d}")
        lapsed.append(version.id)
    db.flush()
    if lapsed:
        log.info("lapsed %d micro-credential version(s): %s", len(lapsed), lapsed)
    return lapsed


# --- offerings ------------------------------------------------------------------------------


def place(db: Session, platform_id: int, context_id: int, version_id: int,
          by: Actor) -> Offering:
    """The offering of an approved version in a course; placing twice gives the same one."""
    version = get_version(db, platform_id, version_id)
    context = db.get(Context, context_id)
    if context is None or context.platform_id != platform_id:
        raise NotFound("No such course.")
    if version.status != "approved":
        raise Conflict(f"only approved micro-credentials can be placed; "
                                f"{version.code} v{version.version} is {version.status}")
    existing = _offering_for(db, context_id, version_id)
    if existing is not None:
        return existing
    offering = Offering(platform_id=platform_id, context_id=context_id,
                        mc_version_id=version_id, created_by_person_id=by.person_id)
    try:
        with db.begin_nested():
            db.add(offering)
            db.flush()
    except IntegrityError:  # placed concurrently: the constraint keeps one
        found = _offering_for(db, context_id, version_id)
        if found is None:
            raise
        return found
    return offering


def _offering_for(db: Session, context_id: int, version_id: int) -> Offering | None:
    return db.scalar(select(Offering).where(Offering.context_id == context_id,
                                            Offering.mc_version_id == version_id))


def course_grade_items(db: Session, context_id: int) -> list[GradeItem]:
    """The course's gradebook items (as the last sync stored them)."""
    return list(db.scalars(select(GradeItem).where(GradeItem.context_id == context_id)
                           .order_by(GradeItem.id)))


def configure_offering(db: Session, offering: Offering, wanted: OfferingSettings) -> Offering:
    """Apply an instructor's settings, or ValidationFailed listing every problem."""
    known = {item.id for item in course_grade_items(db, offering.context_id)}
    found = wanted.problems(kind=offering.mc_version.kind, known_grade_items=known)
    if found:
        raise ValidationFailed(found)
    offering.window_closes_at = wanted.window_closes_at
    offering.reevaluation_policy = wanted.reevaluation_policy
    offering.reevaluation_window_days = wanted.reevaluation_window_days
    offering.grade_item_ids = list(wanted.grade_item_ids)
    offering.grade_passback = wanted.grade_passback
    db.flush()
    return offering
