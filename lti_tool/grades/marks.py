"""Reading marks: an offering's current mappings and the learners' marks on what they map.

Grade items give points out of a maximum, LMS rubric criteria give points or a level, and the
tool's own rubric scores give a level per attempt (the others are shared by both attempts).
Everything is loaded in bulk, `CHUNK` learners at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Dialect, bindparam, func, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from lti_tool.domain.evaluation import GRADE_ITEM, LMS_RUBRIC, TOOL_RUBRIC, Mark, SourceSpec
from lti_tool.store.bulk import driver_rows
from lti_tool.store.db import UTCDateTime
from lti_tool.store.models.evaluation import OutcomeMapping, ToolRubricScore
from lti_tool.store.models.grades import GradeItem, LmsRubricAssessment, LmsRubricCriterion, Score

CHUNK = 500
T = TypeVar("T")

Sources = Mapping[str, Sequence[SourceSpec]]
# Marks of one learner per attempt number (1: the assessment, 2: the re-evaluation).
AttemptMarks = dict[int, list[Mark]]


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterable[list[T]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def current_mapping(db: Session, offering_id: int, attempt_no: int = 1) -> OutcomeMapping | None:
    return db.scalar(select(OutcomeMapping)
                     .where(OutcomeMapping.offering_id == offering_id,
                            OutcomeMapping.attempt_no == attempt_no)
                     .order_by(OutcomeMapping.version.desc()).limit(1))


def mapping_sources(mapping: OutcomeMapping | None) -> dict[str, list[SourceSpec]]:
    sources: dict[str, list[SourceSpec]] = {}
    for row in mapping.sources if mapping else ():
        sources.setdefault(row.outcome_code, []).append(
            SourceSpec(row.kind, row.ref, Decimal(row.weight)))
    return sources


def _criterion_maximum(criterion: LmsRubricCriterion) -> Decimal | None:
    if criterion.max_points is not None:
        return Decimal(criterion.max_points)
    points = [Decimal(str(level["points"])) for level in criterion.levels or ()
              if level.get("points") is not None]
    return max(points) if points else None


def _assessment_points(criterion: LmsRubricCriterion,
                       assessment: LmsRubricAssessment) -> Decimal | None:
    if assessment.points is not None:
        return Decimal(assessment.points)
    for level in criterion.levels or ():
        if str(level.get("id")) == str(assessment.level_id) and level.get("points") is not None:
            return Decimal(str(level["points"]))
    return None


_RAW = NullType()
# Built once (a batch of learners runs these with its ids): the gradebook marks, the item's
# maximum when the score gives none, the LMS's time or else when the tool fetched it. A batch's
# learners are read by the range of their ids (its rows of anyone else are left out while
# reading): the statement's text is then the same for every batch, and the drivers keep it
# prepared instead of writing and parsing a list of 500 ids each time.
_SCORES = (
    select(Score.person_id, Score.grade_item_id, type_coerce(Score.score, _RAW),
           type_coerce(func.coalesce(Score.maximum, GradeItem.maximum), _RAW),
           type_coerce(func.coalesce(Score.lms_updated_at, Score.fetched_at), _RAW))
    .join(GradeItem, GradeItem.id == Score.grade_item_id)
    .where(Score.grade_item_id.in_(bindparam("items", expanding=True)),
           Score.person_id.between(bindparam("first"), bindparam("last"))))
_TOOL_SCORES = select(ToolRubricScore.person_id, ToolRubricScore.attempt_no,
                      ToolRubricScore.outcome_code, ToolRubricScore.level_code,
                      ToolRubricScore.scored_at).where(
    ToolRubricScore.offering_id == bindparam("offering"),
    ToolRubricScore.person_id.between(bindparam("first"), bindparam("last")))


def id_range(person_ids: Sequence[int]) -> dict[str, int]:
    """The `first` and `last` parameters of a statement that reads people by their id range."""
    return {"first": min(person_ids), "last": max(person_ids)}


@lru_cache(maxsize=8)
def _time_of(dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a UTC datetime column's raw value becomes its value (`UTCDateTime`'s own)."""
    return UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)


def shared_marks(db: Session, item_ids: set[int], person_ids: list[int],
                 into: dict[int, list[Mark]]) -> None:
    """Gradebook marks (a score over its maximum, or the item's) of `person_ids`, into `into`.

    Tens of thousands of rows per batch: the columns are read as the driver gives them and
    converted once per distinct value (exactly as their column types convert them), and equal
    marks share one (frozen) `Mark`.
    """
    to_time = _time_of(db.get_bind().dialect)
    numbers: dict[Any, Decimal] = {}
    times: dict[Any, Any] = {}
    made: dict[tuple[Any, ...], Mark] = {}
    if db.autoflush:
        db.flush()  # what the ORM does before a query; the rows are read on the Core level
    rows = driver_rows(db.connection().execute(_SCORES, {"items": sorted(item_ids),
                                                         **id_range(person_ids)}))
    for person_id, item_id, score, maximum, when in rows:
        theirs = into.get(person_id)
        if score is None or theirs is None:  # no mark, or someone else in the range of ids
            continue
        key = (item_id, score, maximum, when)
        mark = made.get(key)
        if mark is None:
            if score not in numbers:
                numbers[score] = Decimal(score)
            if maximum is not None and maximum not in numbers:
                numbers[maximum] = Decimal(maximum)
            if when not in times:
                times[when] = to_time(when) if to_time is not None else when
            mark = made[key] = Mark(
                GRADE_ITEM, str(item_id), score=numbers[score],
                maximum=None if maximum is None else numbers[maximum],
                at=times[when])
        theirs.append(mark)


def load_marks(db: Session, offering_id: int, person_ids: list[int],
               sources: Iterable[Sources]) -> dict[int, AttemptMarks]:
    """Marks per person and attempt on everything `sources` map."""
    if not person_ids:
        return {}
    specs = [s for mapping in sources for specs in mapping.values() for s in specs]
    item_ids = {int(s.ref) for s in specs if s.kind == GRADE_ITEM}
    criterion_ids = {int(s.ref) for s in specs if s.kind == LMS_RUBRIC}
    shared: dict[int, list[Mark]] = {pid: [] for pid in person_ids}
    if item_ids:
        shared_marks(db, item_ids, person_ids, shared)
    if criterion_ids:
        criteria = {c.id: c for c in db.scalars(select(LmsRubricCriterion).where(
            LmsRubricCriterion.id.in_(criterion_ids)))}
        for assessment in db.scalars(select(LmsRubricAssessment).where(
                LmsRubricAssessment.criterion_id.in_(criterion_ids),
                LmsRubricAssessment.person_id.in_(person_ids))):
            criterion = criteria[assessment.criterion_id]
            shared[assessment.person_id].append(Mark(
                LMS_RUBRIC, str(criterion.id),
                score=_assessment_points(criterion, assessment),
                maximum=_criterion_maximum(criterion), level=assessment.level_id,
                at=assessment.lms_updated_at or assessment.fetched_at))
    # Both attempts share one list until a tool rubric score makes them differ.
    marks = {pid: {1: theirs, 2: theirs} for pid, theirs in shared.items()}
    for person_id, attempt_no, code, level, at in db.execute(
            _TOOL_SCORES, {"offering": offering_id, **id_range(person_ids)}):
        attempts = marks.get(person_id)
        if attempts is None:
            continue
        if attempts[1] is attempts[2]:
            attempts[1], attempts[2] = list(attempts[1]), list(attempts[2])
        attempts[attempt_no].append(Mark(TOOL_RUBRIC, code, level=level, at=at))
    return marks
