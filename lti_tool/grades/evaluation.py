"""Running the evaluation: marks from the store -> levels -> decisions -> evidence -> badges.

Entry points (sync, pages, CLI, scheduler) call these functions with a `Session` and
`Settings`; the caller commits. Every decision change appends an evidence record in the same
transaction, and a pass calls the badges area's `issue_on_pass` in that transaction too, so a
learner is never `passed` without the archive (and the credential) that goes with it.

The archive lives in `lti_tool.grades.evidence` and grade passback in
`lti_tool.grades.passback`: a decision queues its score there and `send_passbacks` sends it
afterwards, so an unreachable LMS never undoes a decision.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import exists, func, select, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from lti_tool.catalogue.service import outcomes_of
from lti_tool.domain import decisions as flow
from lti_tool.domain.errors import IllegalTransition, ValidationFailed
from lti_tool.domain.evaluation import (
    GRADE_ITEM,
    LMS_RUBRIC,
    RULE_VERSION,
    TOOL_RUBRIC,
    LearnerEvaluation,
    Mark,
    OutcomeLike,
    OutcomeResult,
    SourceSpec,
    evaluate_learner,
    result_from_dict,
    result_to_dict,
    validate_mapping,
)
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.grades.evidence import append_evidence, inputs_digest
from lti_tool.grades.passback import queue_passback, send_passbacks
from lti_tool.settings import Settings
from lti_tool.store.db import UTCDateTime, utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Membership, Person
from lti_tool.store.models.evaluation import (
    Attempt,
    Decision,
    GradePassback,
    MappingSource,
    OutcomeMapping,
    ReevaluationRequest,
    ReviewFlag,
    ToolRubricScore,
)
from lti_tool.store.models.grades import GradeItem, LmsRubricAssessment, LmsRubricCriterion, Score

log = logging.getLogger(__name__)

CHUNK = 500


class ActorLike(Protocol):
    """The web `Actor`, or an `Acting` from the CLI and tests."""

    person_id: int


@dataclass(frozen=True)
class Acting:
    person_id: int
    role: str = "instructor"


Who = ActorLike | str | None


def _who(actor: Who) -> dict:
    """Who acted, as archived: a person id, or a label such as "scheduler" or "cli"."""
    if actor is None:
        return {"person_id": None, "label": "system"}
    if isinstance(actor, str):
        return {"person_id": None, "label": actor}
    return {"person_id": actor.person_id, "label": getattr(actor, "role", "person")}


def _who_id(actor: Who) -> int | None:
    return None if actor is None or isinstance(actor, str) else actor.person_id


@dataclass
class RunSummary:
    """What a run did: `evaluated` learners looked at, `changed` rows written."""

    evaluated: int = 0
    changed: int = 0
    passed: int = 0
    failed: int = 0
    failed_final: int = 0
    reevaluations: int = 0
    flagged: int = 0

    def add(self, other: RunSummary) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


# --- outcomes and mappings --------------------------------------------------------------------

def outcomes_for(db: Session, mc_version_id: int) -> list[OutcomeLike]:
    """The LOs of an MC version as domain objects (code, required, Rubric)."""
    return list(outcomes_of(db, mc_version_id))


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


def _checked_mapping(db: Session, offering: Offering,
                     sources: Mapping[str, Sequence[SourceSpec]]) -> list[OutcomeLike]:
    outcomes = outcomes_for(db, offering.mc_version_id)
    try:
        validate_mapping(outcomes, sources, known_refs(db, offering))
    except ValidationFailed as exc:
        raise BadRequest("The mapping has problems: " + str(exc),
                         details={"problems": [{"path": p.path, "message": p.message}
                                               for p in exc.problems]}) from exc
    return outcomes


def save_mapping(db: Session, settings: Settings, offering_id: int,
                 sources: Mapping[str, Sequence[SourceSpec]], actor: Who = None, *,
                 attempt_no: int = 1, note: str = "", now: datetime | None = None,
                 ) -> OutcomeMapping:
    """Save the next mapping version and re-evaluate the offering's learners with it."""
    offering = _offering(db, offering_id)
    if attempt_no not in (1, 2):
        raise BadRequest("attempt must be 1 (the assessment) or 2 (the re-evaluation)")
    _checked_mapping(db, offering, sources)
    latest = db.scalar(select(func.max(OutcomeMapping.version)).where(
        OutcomeMapping.offering_id == offering.id, OutcomeMapping.attempt_no == attempt_no))
    mapping = OutcomeMapping(offering_id=offering.id, attempt_no=attempt_no,
                             version=(latest or 0) + 1, created_by=_who_id(actor),
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
    _OfferingRun(db, settings, offering, now=now).run(None)
    return mapping


def preview_mapping(db: Session, offering_id: int, sources: Mapping[str, Sequence[SourceSpec]],
                    *, now: datetime | None = None) -> list[dict]:
    """Every learner's levels under a candidate mapping, on current data; writes nothing."""
    offering = _offering(db, offering_id)
    outcomes = _checked_mapping(db, offering, sources)
    run = _OfferingRun(db, settings=None, offering=offering, now=now, outcomes=outcomes)
    closed = run.closed
    rows = []
    with db.no_autoflush:
        people = run.learner_ids(None)
        names: dict[int, str] = {}
        for chunk in _chunks(people):
            names.update(db.execute(select(Person.id, Person.name)
                                    .where(Person.id.in_(chunk))).all())
        for chunk in _chunks(sorted(people)):
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


# --- marks ------------------------------------------------------------------------------------

def _chunks(values: Sequence[int], size: int = CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


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


# --- the per-offering run ---------------------------------------------------------------------

@dataclass
class _OfferingRun:
    """Evaluates learners of one offering; loads outcomes, mappings and marks in bulk."""

    db: Session
    settings: Settings | None
    offering: Offering
    now: datetime | None = None
    outcomes: list[OutcomeLike] | None = None
    summary: RunSummary = field(default_factory=RunSummary)
    # Passback rows per decision id, loaded per batch (None: the decision has none yet).
    passbacks: dict[int, GradePassback | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.now = self.now or utcnow()
        if self.outcomes is None:
            self.outcomes = outcomes_for(self.db, self.offering.mc_version_id)
        self.mappings: dict[int, OutcomeMapping | None] = {}
        self.sources: dict[int, dict[str, list[SourceSpec]]] = {}
        for attempt in (1, 2):
            row = current_mapping(self.db, self.offering.id, attempt)
            self.mappings[attempt] = row
            self.sources[attempt] = mapping_sources(row)
        if self.mappings[2] is None:  # the re-evaluation reuses the assessment's sources
            self.mappings[2], self.sources[2] = self.mappings[1], self.sources[1]

    @property
    def closed(self) -> bool:
        offering = self.offering
        return offering.finalized_at is not None or (
            offering.window_closes_at is not None and offering.window_closes_at <= self.now)

    def learner_ids(self, person_ids: Iterable[int] | None) -> list[int]:
        members = select(Membership.person_id).where(
            Membership.context_id == self.offering.context_id, Membership.role == "learner",
            Membership.active.is_(True))
        decided = select(Decision.person_id).where(Decision.offering_id == self.offering.id)
        if person_ids is not None:
            wanted = list(set(person_ids))
            found: set[int] = set()
            for chunk in _chunks(wanted):
                found |= set(self.db.scalars(members.where(Membership.person_id.in_(chunk))))
                found |= set(self.db.scalars(decided.where(Decision.person_id.in_(chunk))))
            return sorted(found)
        return sorted(set(self.db.scalars(members)) | set(self.db.scalars(decided)))

    def load_marks(self, person_ids: list[int],
                   extra_specs: Mapping[str, Sequence[SourceSpec]] | None = None,
                   ) -> dict[int, dict[int, list[Mark]]]:
        """Marks per person and attempt (tool rubric levels are per attempt, the rest shared)."""
        specs = [s for sources in (self.sources[1], self.sources[2], extra_specs or {})
                 for specs in sources.values() for s in specs]
        item_ids = {int(s.ref) for s in specs if s.kind == GRADE_ITEM}
        criterion_ids = {int(s.ref) for s in specs if s.kind == LMS_RUBRIC}
        shared: dict[int, list[Mark]] = {pid: [] for pid in person_ids}
        if item_ids:
            maxima = dict(self.db.execute(select(GradeItem.id, GradeItem.maximum)
                                          .where(GradeItem.id.in_(item_ids))).all())
            at = type_coerce(func.coalesce(Score.lms_updated_at, Score.fetched_at), UTCDateTime)
            for row in self.db.execute(
                    select(Score.person_id, Score.grade_item_id, Score.score, Score.maximum,
                           at.label("at"))
                    .where(Score.grade_item_id.in_(item_ids), Score.person_id.in_(person_ids))):
                if row.score is None:
                    continue
                shared[row.person_id].append(Mark(
                    GRADE_ITEM, str(row.grade_item_id), score=Decimal(row.score),
                    maximum=row.maximum if row.maximum is not None else maxima.get(
                        row.grade_item_id), at=row.at))
        if criterion_ids:
            criteria = {c.id: c for c in self.db.scalars(select(LmsRubricCriterion).where(
                LmsRubricCriterion.id.in_(criterion_ids)))}
            for assessment in self.db.scalars(select(LmsRubricAssessment).where(
                    LmsRubricAssessment.criterion_id.in_(criterion_ids),
                    LmsRubricAssessment.person_id.in_(person_ids))):
                criterion = criteria[assessment.criterion_id]
                shared[assessment.person_id].append(Mark(
                    LMS_RUBRIC, str(criterion.id),
                    score=_assessment_points(criterion, assessment),
                    maximum=_criterion_maximum(criterion), level=assessment.level_id,
                    at=assessment.lms_updated_at or assessment.fetched_at))
        marks = {pid: {1: list(shared[pid]), 2: list(shared[pid])} for pid in person_ids}
        for score in self.db.scalars(select(ToolRubricScore).where(
                ToolRubricScore.offering_id == self.offering.id,
                ToolRubricScore.person_id.in_(person_ids))):
            marks[score.person_id][score.attempt_no].append(Mark(
                TOOL_RUBRIC, score.outcome_code, level=score.level_code, at=score.scored_at))
        return marks

    def run(self, person_ids: Iterable[int] | None, *,
            only_status: str | None = None, actor: Who = "system") -> RunSummary:
        people = self.learner_ids(person_ids)
        for chunk in _chunks(people):
            decisions = self.decisions_for(chunk)
            self.passbacks.update({d.id: None for d in decisions.values()})
            self.passbacks.update({p.decision_id: p for p in self.db.scalars(
                select(GradePassback).where(GradePassback.decision_id.in_(
                    [d.id for d in decisions.values()])))})
            marks = self.load_marks(chunk)
            for person_id in chunk:
                decision = decisions[person_id]
                if only_status is None or decision.status == only_status:
                    self.step(decision, marks[person_id], actor=actor)
        return self.summary

    def _decision_row(self, person_id: int) -> Decision:
        decision = Decision(platform_id=self.offering.platform_id, offering_id=self.offering.id,
                            person_id=person_id, status=flow.IN_PROGRESS, reevaluations_used=0,
                            outcomes={}, share_attained=Decimal(0), inputs_digest="")
        decision.attempts.append(Attempt(number=1, opened_at=self.now,
                                         closes_at=self.offering.window_closes_at,
                                         granted_via="offering", results={}))
        return decision

    def decisions_for(self, person_ids: list[int]) -> dict[int, Decision]:
        """The learners' decisions, creating the missing ones (in bulk; one by one only when
        another process created some at the same moment)."""
        # The outcomes snapshot is read only when something changed: load it on demand.
        query = select(Decision).where(Decision.offering_id == self.offering.id) \
            .options(defer(Decision.outcomes))
        found = {d.person_id: d for d in self.db.scalars(
            query.where(Decision.person_id.in_(person_ids)))}
        missing = [pid for pid in person_ids if pid not in found]
        if not missing:
            return found
        try:
            with self.db.begin_nested():
                rows = [self._decision_row(pid) for pid in missing]
                self.db.add_all(rows)
            found.update((row.person_id, row) for row in rows)
        except IntegrityError:
            for pid in missing:
                found[pid] = self._new_decision(pid)
        return found

    def _new_decision(self, person_id: int) -> Decision:
        decision = self._decision_row(person_id)
        try:
            with self.db.begin_nested():
                self.db.add(decision)
        except IntegrityError:  # created concurrently (another sync): use that one
            decision = self.db.scalars(select(Decision).where(
                Decision.offering_id == self.offering.id,
                Decision.person_id == person_id)).one()
        return decision

    def _attempt(self, decision: Decision, number: int) -> Attempt | None:
        return next((a for a in decision.attempts if a.number == number), None)

    def evaluate(self, decision: Decision, marks: Mapping[int, list[Mark]],
                 *, attempt: int | None = None, force_closed: bool = False,
                 ) -> tuple[LearnerEvaluation, bool, OutcomeMapping | None]:
        """The learner's evaluation in their current attempt, and whether that attempt closed."""
        number = attempt or decision.reevaluations_used + 1
        carried: dict[str, OutcomeResult] | None = None
        if number == 2:
            second = self._attempt(decision, 2)
            closed = bool(second and second.closes_at and second.closes_at <= self.now)
            first = self._attempt(decision, 1)
            carried = {code: result_from_dict(data)
                       for code, data in (first.results if first else {}).items()}
        else:
            closed = self.closed
        closed = closed or force_closed
        evaluation = evaluate_learner(self.outcomes or [], self.sources[number],
                                      marks.get(number, []), closed=closed, carried=carried)
        return evaluation, closed, self.mappings[number]

    def step(self, decision: Decision, marks: Mapping[int, list[Mark]], *,
             actor: Who = "system", force_closed: bool = False) -> None:
        """Evaluate one learner and move their decision if the rules say so."""
        self.summary.evaluated += 1
        if decision.status == flow.PASSED:
            self._check_after_pass(decision, marks)
            return
        if decision.status not in flow.OPEN_STATUSES:
            return  # failed / failed_final: nothing changes until a grant
        evaluation, closed, mapping = self.evaluate(decision, marks, force_closed=force_closed)
        digest = inputs_digest(evaluation, mapping.id if mapping else None)
        if evaluation.all_required_attained:
            self.decide(decision, flow.ATTAIN_ALL, evaluation, mapping, actor, digest,
                        expected=decision.status)
        elif closed:
            self.decide(decision, flow.CLOSE, evaluation, mapping, actor, digest,
                        expected=decision.status)
        elif digest != decision.inputs_digest:  # a new decision has no digest yet
            self._snapshot(decision, evaluation, mapping, digest)
            self.summary.changed += 1
            queue_passback(self.db, decision, self.passbacks)

    def _snapshot(self, decision: Decision, evaluation: LearnerEvaluation,
                  mapping: OutcomeMapping | None, digest: str) -> None:
        decision.outcomes = {r.code: result_to_dict(r) for r in evaluation.results}
        decision.share_attained = Decimal(evaluation.share_attained.numerator) / \
            Decimal(evaluation.share_attained.denominator)
        decision.mapping_id = mapping.id if mapping else None
        decision.inputs_digest = digest
        decision.evaluated_at = self.now

    def decide(self, decision: Decision, event: str, evaluation: LearnerEvaluation,
               mapping: OutcomeMapping | None, actor: Who, digest: str,
               details: dict | None = None, expected: str | None = None) -> None:
        """Apply a transition: snapshot, evidence, badge on a pass, passback, automatic grant.

        The decision row is locked and re-read first (PostgreSQL; SQLite serialises writers),
        so two processes evaluating the same learner decide once: an automatic step whose
        `expected` status has meanwhile changed is dropped.
        """
        if decision.id is not None:
            self.db.refresh(decision, with_for_update=True)
            if expected is not None and decision.status != expected:
                return
        before = flow.DecisionState(decision.status, decision.reevaluations_used)
        try:
            after = flow.transition(before, event)
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from exc
        attempt_no = before.attempt
        self._snapshot(decision, evaluation, mapping, digest)
        decision.status = after.status
        decision.reevaluations_used = after.reevaluations_used
        decision.decided_at = self.now
        attempt = self._attempt(decision, attempt_no)
        if attempt is not None and after.status != before.status and event != \
                flow.GRANT_REEVALUATION:
            attempt.closed_at = self.now
            attempt.results = dict(decision.outcomes)
        if after.status == flow.PASSED:
            decision.passed_at = self.now
            decision.passed_via = "prior_learning" if event == flow.RECOGNISE_PRIOR_LEARNING \
                else "evaluation"
        self._archive(decision, before.status, event, evaluation, mapping, actor, attempt_no,
                      details)
        self.summary.changed += 1
        if after.status == flow.PASSED:
            self.summary.passed += 1
            _issue_badge(self.db, self.settings, decision, self.offering, evaluation, self.now)
        elif after.status == flow.FAILED:
            self.summary.failed += 1
        elif after.status == flow.FAILED_FINAL:
            self.summary.failed_final += 1
        queue_passback(self.db, decision, self.passbacks)
        if after.status == flow.FAILED and self.offering.reevaluation_policy == "automatic":
            self.grant(decision, actor="policy:automatic", via="automatic")

    def _archive(self, decision: Decision, from_status: str, event: str,
                 evaluation: LearnerEvaluation, mapping: OutcomeMapping | None, actor: Who,
                 attempt_no: int, details: dict | None) -> None:
        payload = {
            "from": from_status, "to": decision.status, "trigger": event,
            "decision_id": decision.id, "platform_id": decision.platform_id,
            "offering_id": decision.offering_id, "person_id": decision.person_id,
            "mc_version_id": self.offering.mc_version_id, "attempt": attempt_no,
            "reevaluations_used": decision.reevaluations_used,
            "mapping": None if mapping is None else {
                "id": mapping.id, "version": mapping.version, "attempt_no": mapping.attempt_no},
            "rule_version": RULE_VERSION,
            "outcomes": [result_to_dict(r) for r in evaluation.results],
            "share_attained": str(decision.share_attained),
            "actor": _who(actor), "at": self.now, "details": details or {},
        }
        append_evidence(self.db, platform_id=decision.platform_id, event=decision.status,
                        payload=payload, decision_id=decision.id,
                        offering_id=decision.offering_id, person_id=decision.person_id)

    def grant(self, decision: Decision, *, actor: Who, via: str, closes_at: datetime | None = None,
              reason: str = "") -> None:
        """Open attempt 2 (the one re-evaluation) and evaluate the learner in it."""
        before = flow.DecisionState(decision.status, decision.reevaluations_used)
        try:
            flow.transition(before, flow.GRANT_REEVALUATION)
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from exc
        closes_at = closes_at or self.now + timedelta(
            days=max(1, self.offering.reevaluation_window_days or 14))
        if closes_at <= self.now:
            raise BadRequest("The re-evaluation must close in the future.")
        try:
            with self.db.begin_nested():
                decision.attempts.append(Attempt(
                    number=2, opened_at=self.now, closes_at=closes_at, granted_by=_who_id(actor),
                    granted_via=via, reason=reason[:2000], results={}))
                self.db.flush()
        except IntegrityError as exc:
            raise Conflict("Cannot grant a re-evaluation: this learner has already had their "
                           "one re-evaluation (Art. 9/3 allows it once).") from exc
        first = self._attempt(decision, 1)
        carried = {code: result_from_dict(data)
                   for code, data in (first.results if first else {}).items()}
        evaluation = LearnerEvaluation(tuple(carried.values()))
        self.decide(decision, flow.GRANT_REEVALUATION, evaluation, self.mappings[2], actor,
                    decision.inputs_digest,
                    details={"closes_at": closes_at, "via": via, "reason": reason[:2000],
                             "reassessed": evaluation.not_attained_codes()})
        self.summary.reevaluations += 1
        request = self.db.scalar(select(ReevaluationRequest).where(
            ReevaluationRequest.decision_id == decision.id))
        if request is not None and request.status == "pending":
            request.status, request.handled_at = "granted", self.now
            request.handled_by = _who_id(actor)
        # Late marks may already attain what was missing: evaluate attempt 2 straight away.
        self.step(decision, self.load_marks([decision.person_id])[decision.person_id],
                  actor=actor)

    def _check_after_pass(self, decision: Decision, marks: Mapping[int, list[Mark]]) -> None:
        """A mark that changed after a pass raises a review flag; the pass itself stands."""
        if decision.passed_via != "evaluation":
            return
        attempt = decision.reevaluations_used + 1
        pass_mapping = self.db.get(OutcomeMapping, decision.mapping_id) \
            if decision.mapping_id else None
        sources = mapping_sources(pass_mapping) if pass_mapping else self.sources[attempt]
        carried = None
        if attempt == 2:
            first = self._attempt(decision, 1)
            carried = {c: result_from_dict(d) for c, d in (first.results if first else {}).items()}
        evaluation = evaluate_learner(self.outcomes or [], sources, marks.get(attempt, []),
                                      closed=False, carried=carried)
        digest = inputs_digest(evaluation, decision.mapping_id)
        if digest == decision.inputs_digest:
            return
        already = self.db.scalar(select(ReviewFlag.id).where(
            ReviewFlag.decision_id == decision.id, ReviewFlag.inputs_digest == digest))
        if already is not None:
            return
        lost = [r.code for r in evaluation.required if not r.attained]
        reason = ("Marks changed after the pass; with the new marks the learner would no longer "
                  f"attain {', '.join(lost)}. The pass and any badge stand until you decide."
                  if lost else "Marks changed after the pass; the pass still holds.")
        details = {
            "before": {c: (d.get("level"), d.get("status")) for c, d in decision.outcomes.items()},
            "after": {r.code: (r.level, r.status) for r in evaluation.results},
            "would_lose": lost,
        }
        flag = ReviewFlag(decision_id=decision.id, offering_id=decision.offering_id,
                          person_id=decision.person_id, reason=reason, inputs_digest=digest,
                          details=details, created_at=self.now)
        self.db.add(flag)
        append_evidence(self.db, platform_id=decision.platform_id, event="review_flagged",
                        payload={"decision_id": decision.id, "reason": reason,
                                 "outcomes": [result_to_dict(r) for r in evaluation.results],
                                 "at": self.now, "rule_version": RULE_VERSION},
                        decision_id=decision.id, offering_id=decision.offering_id,
                        person_id=decision.person_id)
        self.summary.flagged += 1
        self.summary.changed += 1


def _issue_badge(db: Session, settings: Settings | None, decision: Decision, offering: Offering,
                 evaluation: LearnerEvaluation, now: datetime) -> None:
    """Hand the pass to the badges area in this transaction (skipped while it is absent)."""
    try:
        from lti_tool.badges.issuance import issue_on_pass
    except ImportError:
        log.info("badges.issuance is not installed: pass of decision %s recorded without a "
                 "badge", decision.id)
        return
    if settings is None:
        from lti_tool.settings import load_settings

        settings = load_settings()
    issue_on_pass(db, settings, person_id=decision.person_id,
                  mc_version_id=offering.mc_version_id, offering_id=offering.id,
                  outcome_levels=evaluation.outcome_levels(), passed_at=now)


# --- public service functions -----------------------------------------------------------------

def _offering(db: Session, offering_id: int) -> Offering:
    offering = db.get(Offering, offering_id)
    if offering is None:
        raise NotFound(f"No offering {offering_id}.")
    return offering


def _decision(db: Session, offering_id: int, person_id: int) -> Decision:
    decision = db.scalar(select(Decision).where(Decision.offering_id == offering_id,
                                                Decision.person_id == person_id))
    if decision is None:
        raise NotFound("This learner has no evaluation in this offering yet.")
    return decision


def evaluate_changed(db: Session, settings: Settings, context_id: int,
                     person_ids: set[int] | None = None, *, now: datetime | None = None,
                     ) -> RunSummary:
    """Re-evaluate the learners of a course context (all, or only `person_ids`, the ones whose
    marks changed). Called by sync after it commits, and after mapping or rubric changes."""
    if person_ids is not None and not person_ids:
        return RunSummary()
    summary = RunSummary()
    for offering in db.scalars(select(Offering).where(Offering.context_id == context_id)
                               .order_by(Offering.id)):
        summary.add(_OfferingRun(db, settings, offering, now=now).run(person_ids))
    return summary


def finalize(db: Session, settings: Settings, offering_id: int, actor: Who,
             *, now: datetime | None = None) -> RunSummary:
    """Close the offering's assessment window now: unfinished learners become `failed`."""
    offering = _offering(db, offering_id)
    if offering.finalized_at is not None:
        raise Conflict(f"This offering was already finalized at "
                       f"{offering.finalized_at:%Y-%m-%d %H:%M} UTC.")
    run = _OfferingRun(db, settings, offering, now=now)
    offering.finalized_at = run.now
    return run.run(None, only_status=flow.IN_PROGRESS, actor=actor)


def close_due_windows(db: Session, now: datetime | None = None,
                      settings: Settings | None = None) -> RunSummary:
    """Scheduler job: close assessment windows and re-evaluation windows that are due."""
    now = now or utcnow()
    summary = RunSummary()
    open_decision = exists().where(Decision.offering_id == Offering.id,
                                   Decision.status == flow.IN_PROGRESS)
    undecided = exists().where(
        Membership.context_id == Offering.context_id, Membership.role == "learner",
        Membership.active.is_(True),
        ~exists().where(Decision.offering_id == Offering.id,
                        Decision.person_id == Membership.person_id))
    due = db.scalars(select(Offering).where(
        Offering.window_closes_at.is_not(None), Offering.window_closes_at <= now,
        open_decision | undecided).order_by(Offering.id)).all()
    for offering in due:
        summary.add(_OfferingRun(db, settings, offering, now=now).run(None))
    second = db.execute(
        select(Decision.offering_id, Decision.person_id).join(Attempt).where(
            Decision.status == flow.REEVALUATION_GRANTED, Attempt.number == 2,
            Attempt.closes_at <= now)).all()
    by_offering: dict[int, set[int]] = {}
    for offering_id, person_id in second:
        by_offering.setdefault(offering_id, set()).add(person_id)
    for offering_id, people in sorted(by_offering.items()):
        summary.add(_OfferingRun(db, settings, _offering(db, offering_id), now=now).run(people))
    return summary


def grant_reevaluation(db: Session, settings: Settings, offering_id: int, person_id: int,
                       actor: Who, *, closes_at: datetime | None = None, reason: str = "",
                       now: datetime | None = None) -> Decision:
    """An instructor grants a failed learner their one re-evaluation (Art. 9/3)."""
    offering = _offering(db, offering_id)
    decision = _decision(db, offering_id, person_id)
    _OfferingRun(db, settings, offering, now=now).grant(
        decision, actor=actor, via="instructor", closes_at=closes_at, reason=reason)
    return decision


def request_deadline(offering: Offering, decision: Decision) -> datetime | None:
    """Learners may ask for their re-evaluation up to `reevaluation_window_days` after the
    failing decision (the learner page shows the same date)."""
    base = decision.decided_at or offering.finalized_at or offering.window_closes_at
    return None if base is None else base + timedelta(
        days=offering.reevaluation_window_days or 14)


def request_reevaluation(db: Session, settings: Settings, offering_id: int, person_id: int,
                         reason: str = "", *, now: datetime | None = None) -> Decision:
    """A learner asks for their re-evaluation: granted at once under the `learner_request`
    policy, recorded for the instructor under `instructor`."""
    offering = _offering(db, offering_id)
    decision = _decision(db, offering_id, person_id)
    if decision.reevaluations_used >= flow.MAX_REEVALUATIONS:
        raise Conflict("You have already had your one re-evaluation for this micro-credential.")
    if decision.status != flow.FAILED:
        raise Conflict("A re-evaluation can be requested only after the assessment has closed "
                       f"without a pass (your status is {decision.status}).")
    run = _OfferingRun(db, settings, offering, now=now)
    deadline = request_deadline(offering, decision)
    if deadline is not None and run.now > deadline:
        raise Conflict(f"Requests for a re-evaluation closed on {deadline:%Y-%m-%d %H:%M} UTC.")
    try:
        with db.begin_nested():
            db.add(ReevaluationRequest(decision_id=decision.id, person_id=person_id,
                                       reason=reason[:2000], requested_at=run.now))
    except IntegrityError as exc:
        raise Conflict("You have already requested a re-evaluation; your instructor will "
                       "decide.") from exc
    if offering.reevaluation_policy == "learner_request":
        run.grant(decision, actor=f"learner:{person_id}", via="learner_request", reason=reason)
    return decision


def recognise_prior_learning(db: Session, settings: Settings, offering_id: int, person_id: int,
                             actor: Who, evidence: Mapping[str, Mapping[str, str]], *,
                             now: datetime | None = None) -> Decision:
    """An assessor records prior-learning evidence per LO; the learner passes (DESIGN).

    `evidence` maps each LO code to {"evidence": text, "level": optional level code}; every
    required LO needs evidence, and a level given must attain the LO's threshold.
    """
    offering = _offering(db, offering_id)
    run = _OfferingRun(db, settings, offering, now=now)
    decision = run.decisions_for([person_id])[person_id]
    problems: list[str] = []
    results: list[OutcomeResult] = []
    codes = {outcome.code for outcome in run.outcomes or []}
    problems += [f"{code}: not an outcome of this micro-credential"
                 for code in evidence if code not in codes]
    for outcome in run.outcomes or []:
        entry = evidence.get(outcome.code) or {}
        text = str(entry.get("evidence", "")).strip()
        level = str(entry.get("level") or outcome.rubric.threshold)
        if outcome.required and not text:
            problems.append(f"{outcome.code}: describe the prior-learning evidence")
            continue
        try:
            attained = outcome.rubric.attains(level)
        except KeyError:
            problems.append(f"{outcome.code}: {level!r} is not a level of its rubric")
            continue
        if text and not attained:
            problems.append(f"{outcome.code}: level {level} does not attain the threshold "
                            f"{outcome.rubric.threshold}")
            continue
        results.append(OutcomeResult(code=outcome.code, required=outcome.required,
                                     status="attained" if text else "not_yet_assessed",
                                     percent=None, level=level if text else None,
                                     threshold=outcome.rubric.threshold))
    if problems:
        raise BadRequest("Prior learning cannot be recognised: " + "; ".join(problems),
                         details={"problems": problems})
    evaluation = LearnerEvaluation(tuple(results))
    run.decide(decision, flow.RECOGNISE_PRIOR_LEARNING, evaluation, None, actor,
               decision.inputs_digest,
               details={"prior_learning": {c: dict(e) for c, e in evidence.items()}})
    return decision


def set_tool_rubric_score(db: Session, settings: Settings, offering_id: int, person_id: int,
                          outcome_code: str, level_code: str, actor: Who, comment: str = "",
                          *, now: datetime | None = None) -> Decision:
    """An instructor scores a learner on an LO's rubric in the tool; the learner is
    re-evaluated at once (a change after a pass raises a review flag)."""
    offering = _offering(db, offering_id)
    run = _OfferingRun(db, settings, offering, now=now)
    outcome = next((o for o in run.outcomes or [] if o.code == outcome_code), None)
    if outcome is None:
        raise NotFound(f"{outcome_code!r} is not an outcome of this micro-credential.")
    try:
        outcome.rubric.rank(level_code)
    except KeyError as exc:
        raise BadRequest(f"{level_code!r} is not a level of {outcome_code}'s rubric.") from exc
    if person_id not in run.learner_ids({person_id}):
        raise NotFound("This person is not a learner of this course.")
    decision = run.decisions_for([person_id])[person_id]
    if decision.status in (flow.FAILED, flow.FAILED_FINAL):
        raise Conflict("The assessment is closed for this learner "
                       f"({decision.status}); grant a re-evaluation to score again.")
    attempt = decision.reevaluations_used + 1
    row = db.scalar(select(ToolRubricScore).where(
        ToolRubricScore.offering_id == offering_id, ToolRubricScore.person_id == person_id,
        ToolRubricScore.outcome_code == outcome_code, ToolRubricScore.attempt_no == attempt))
    if row is None:
        row = ToolRubricScore(offering_id=offering_id, person_id=person_id,
                              outcome_code=outcome_code, attempt_no=attempt)
        db.add(row)
    row.level_code, row.comment = level_code, comment[:5000]
    row.scored_by, row.scored_at = _who_id(actor), run.now
    db.flush()
    run.run({person_id})
    return decision


def resolve_flag(db: Session, flag: ReviewFlag, actor: Who, *,
                 now: datetime | None = None) -> ReviewFlag:
    """The instructor has reviewed a flagged pass (revoking, if needed, is the Office's)."""
    if flag.resolved_at is not None:
        raise Conflict("This review flag is already closed.")
    flag.resolved_at, flag.resolved_by = now or utcnow(), _who_id(actor)
    decision = db.get(Decision, flag.decision_id)
    append_evidence(db, platform_id=decision.platform_id, event="review_resolved",
                    payload={"decision_id": decision.id, "flag_id": flag.id,
                             "actor": _who(actor), "at": flag.resolved_at},
                    decision_id=decision.id, offering_id=decision.offering_id,
                    person_id=decision.person_id)
    return flag


def run_scheduled(runtime: Any, now: datetime | None = None) -> tuple[RunSummary, dict]:
    """The scheduler's evaluation job: close due windows, then send queued grades.

    Two transactions, so a passback problem never rolls back a closed window.
    """
    with runtime.sessions() as db:
        summary = close_due_windows(db, now, runtime.settings)
        db.commit()
    with runtime.sessions() as db:
        counts = send_passbacks(db, runtime.settings, now=now)
        db.commit()
    return summary, counts
