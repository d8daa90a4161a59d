"""Mappings: which gradebook items, LMS rubric criteria or tool rubric levels each LO of an
offering draws on, with weights. Every save is a new version; the learners are re-evaluated
with it in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.catalogue.service import outcomes_of
from lti_tool.domain.actors import SYSTEM, Actor
from lti_tool.domain.errors import ValidationFailed
from lti_tool.domain.evaluation import (
    GRADE_ITEM,
    LMS_RUBRIC,
    OutcomeLike,
    SourceSpec,
    evaluate_learner,
    validate_mapping,
)
from lti_tool.errors import BadRequest, Conflict
from lti_tool.grades.decisions import OfferingRun, get_offering
from lti_tool.grades.marks import chunks
from lti_tool.settings import Settings
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Person
from lti_tool.store.models.evaluation import MappingSource, OutcomeMapping
from lti_tool.store.models.grades import GradeItem, LmsRubricCriterion

Sources = Mapping[str, Sequence[SourceSpec]]


def outcomes_for(db: Session, mc_version_id: int) -> list[OutcomeLike]:
    """The LOs of an MC version as domain objects (code, required, Rubric)."""
    return list[OutcomeLike](outcomes_of(db, mc_version_id))


def known_refs(db: Session, offering: Offering) -> dict[str, set[str]]:
    """The gradebook items and LMS rubric criteria an offering may map (its course's, and for
    an embedded MC only the items the offering names)."""
    query = select(GradeItem.id).where(GradeItem.context_id == offering.context_id,
                                       GradeItem.active.is_(True))
    if offering.grade_item_ids:
        query = query.where(GradeItem.id.in_([int(i) for i in offering.grade_item_ids]))
    item_ids = set(db.scalars(query))
    criteria = set(db.scalars(select(LmsRubricCriterion.id).where(
        LmsRubricCriterion.grade_item_id.in_(item_ids), LmsRubricCriterion.active.is_(True))))
    return {GRADE_ITEM: {str(i) for i in item_ids}, LMS_RUBRIC: {str(c) for c in criteria}}


def mapping_problems_error(exc: ValidationFailed, prefix: str = "The mapping has problems: ",
                           ) -> BadRequest:
    return BadRequest(prefix + str(exc),
                      details={"problems": [{"path": p.path, "message": p.message}
                                            for p in exc.problems]})


def checked_mapping(db: Session, offering: Offering, sources: Sources) -> list[OutcomeLike]:
    outcomes = outcomes_for(db, offering.mc_version_id)
    try:
        validate_mapping(outcomes, sources, known_refs(db, offering))
    except ValidationFailed as exc:
        raise mapping_problems_error(exc) from exc
    return outcomes


def save_mapping(db: Session, settings: Settings, offering_id: int, sources: Sources,
                 actor: Actor = SYSTEM, *, attempt_no: int = 1, note: str = "",
                 now: datetime | None = None) -> OutcomeMapping:
    """Save the next mapping version and re-evaluate the offering's learners with it."""
    offering = get_offering(db, offering_id)
    if attempt_no not in (1, 2):
        raise BadRequest("attempt must be 1 (the assessment) or 2 (the re-evaluation)")
    checked_mapping(db, offering, sources)
    latest = db.scalar(select(func.max(OutcomeMapping.version)).where(
        OutcomeMapping.offering_id == offering.id, OutcomeMapping.attempt_no == attempt_no))
    mapping = OutcomeMapping(offering_id=offering.id, attempt_no=attempt_no,
                             version=(latest or 0) + 1, created_by=actor.person_id,
                             note=note[:500])
    for code, specs in sources.items():
        for spec in specs:
            mapping.sources.append(MappingSource(outcome_code=code, kind=spec.kind,
                                                 ref=spec.ref, weight=spec.weight))
    try:
        with db.begin_nested():
            db.add(mapping)
    except IntegrityError as exc:
        raise Conflict("Someone saved this mapping at the same moment; reload and retry.") \
            from exc
    OfferingRun.of(db, settings, offering, now=now).run(None)
    return mapping


def preview_mapping(db: Session, offering_id: int, sources: Sources,
                    *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every learner's levels under a candidate mapping, on current data; writes nothing."""
    offering = get_offering(db, offering_id)
    outcomes = checked_mapping(db, offering, sources)
    run = OfferingRun.of(db, None, offering, now=now, outcomes=outcomes)
    closed = run.closed
    rows = []
    with db.no_autoflush:
        people = run.learner_ids(None)
        names: dict[int, str] = {}
        for chunk in chunks(people):
            names.update(db.execute(select(Person.id, Person.name)
                                    .where(Person.id.in_(chunk))).all())
        for chunk in chunks(sorted(people)):
            marks = run.load_marks(chunk, extra_specs=sources)
            for person_id in chunk:
                evaluation = evaluate_learner(outcomes, sources, marks[person_id][1],
                                              closed=closed)
                rows.append({
                    "person_id": person_id, "name": names.get(person_id, ""),
                    "all_required_attained": evaluation.all_required_attained,
                    "share_attained": str(round(float(evaluation.share_attained), 4)),
                    "outcomes": {r.code: {"level": r.level, "status": r.status,
                                          "percent": None if r.percent is None else str(r.percent)}
                                 for r in evaluation.results},
                })
    return rows
