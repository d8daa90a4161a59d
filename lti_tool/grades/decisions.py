"""Deciding: each learner of an offering evaluated under its mapping, and their decision moved
when the rules (`lti_tool.domain.decisions`) say so.

`OfferingRun` loads an offering's outcomes and mappings once and its learners' marks in bulk;
`step` evaluates one learner and applies at most the transitions the evaluation calls for
(through `Recorder`). `evaluate_changed` is what the sync calls after it commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from lti_tool.catalogue.service import outcomes_of
from lti_tool.domain import decisions as flow
from lti_tool.domain.actors import SYSTEM, Actor, labelled
from lti_tool.domain.evaluation import (
    LearnerEvaluation,
    Mark,
    OutcomeLike,
    OutcomeResult,
    SourceSpec,
    evaluate_learner,
)
from lti_tool.errors import NotFound
from lti_tool.grades.evidence import inputs_digest
from lti_tool.grades.marks import (
    AttemptMarks,
    chunks,
    current_mapping,
    load_marks,
    mapping_sources,
)
from lti_tool.grades.passback import queue_passback
from lti_tool.grades.review import check_after_pass
from lti_tool.grades.transitions import Recorder, RunSummary, attempt_of, carried_results
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Membership
from lti_tool.store.models.evaluation import Attempt, Decision, GradePassback, OutcomeMapping

AUTOMATIC_POLICY = labelled("policy:automatic")


def get_offering(db: Session, offering_id: int) -> Offering:
    offering = db.get(Offering, offering_id)
    if offering is None:
        raise NotFound(f"No offering {offering_id}.")
    return offering


def get_decision(db: Session, offering_id: int, person_id: int) -> Decision:
    decision = db.scalar(select(Decision).where(Decision.offering_id == offering_id,
                                                Decision.person_id == person_id))
    if decision is None:
        raise NotFound("This learner has no evaluation in this offering yet.")
    return decision


@dataclass
class OfferingRun(Recorder):
    """Evaluates learners of one offering; loads outcomes, mappings and marks in bulk."""

    outcomes: list[OutcomeLike] = field(default_factory=list)
    mappings: dict[int, OutcomeMapping | None] = field(default_factory=dict)
    sources: dict[int, dict[str, list[SourceSpec]]] = field(default_factory=dict)

    @classmethod
    def of(cls, db: Session, settings: Settings | None, offering: Offering, *,
           now: datetime | None = None, outcomes: list[OutcomeLike] | None = None,
           ) -> OfferingRun:
        run = cls(db=db, settings=settings, offering=offering, now=now or utcnow(),
                  outcomes=list[OutcomeLike](outcomes_of(db, offering.mc_version_id))
                  if outcomes is None else outcomes)
        for attempt in (1, 2):
            row = current_mapping(db, offering.id, attempt)
            run.mappings[attempt], run.sources[attempt] = row, mapping_sources(row)
        if run.mappings[2] is None:  # the re-evaluation reuses the assessment's sources
            run.mappings[2], run.sources[2] = run.mappings[1], run.sources[1]
        return run

    @property
    def closed(self) -> bool:
        return not self.offering.is_open(self.now)

    def learner_ids(self, person_ids: Iterable[int] | None) -> list[int]:
        members = select(Membership.person_id).where(
            Membership.context_id == self.offering.context_id, Membership.role == "learner",
            Membership.active.is_(True))
        decided = select(Decision.person_id).where(Decision.offering_id == self.offering.id)
        if person_ids is not None:
            wanted = list(set(person_ids))
            found: set[int] = set()
            for chunk in chunks(wanted):
                found |= set(self.db.scalars(members.where(Membership.person_id.in_(chunk))))
                found |= set(self.db.scalars(decided.where(Decision.person_id.in_(chunk))))
            return sorted(found)
        return sorted(set(self.db.scalars(members)) | set(self.db.scalars(decided)))

    def load_marks(self, person_ids: list[int],
                   extra_specs: Mapping[str, Sequence[SourceSpec]] | None = None,
                   ) -> dict[int, AttemptMarks]:
        return load_marks(self.db, self.offering.id, person_ids,
                          (self.sources[1], self.sources[2], extra_specs or {}))

    def run(self, person_ids: Iterable[int] | None, *,
            only_status: str | None = None, actor: Actor = SYSTEM) -> RunSummary:
        people = self.learner_ids(person_ids)
        for chunk in chunks(people):
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

    def evaluate(self, decision: Decision, marks: Mapping[int, list[Mark]],
                 *, attempt: int | None = None, force_closed: bool = False,
                 ) -> tuple[LearnerEvaluation, bool, OutcomeMapping | None]:
        """The learner's evaluation in their current attempt, and whether that attempt closed."""
        number = attempt or decision.reevaluations_used + 1
        carried: dict[str, OutcomeResult] | None = None
        if number == 2:
            second = attempt_of(decision, 2)
            closed = second is not None and not second.is_open(self.now)
            carried = carried_results(decision)
        else:
            closed = self.closed
        closed = closed or force_closed
        evaluation = evaluate_learner(self.outcomes, self.sources[number],
                                      marks.get(number, []), closed=closed, carried=carried)
        return evaluation, closed, self.mappings[number]

    def step(self, decision: Decision, marks: Mapping[int, list[Mark]], *,
             actor: Actor = SYSTEM, force_closed: bool = False) -> None:
        """Evaluate one learner and move their decision if the rules say so."""
        self.summary.evaluated += 1
        if decision.status == flow.PASSED:
            check_after_pass(self, decision, self.outcomes, self.sources, marks)
            return
        if decision.status not in flow.OPEN_STATUSES:
            return  # failed / failed_final: nothing changes until a grant
        evaluation, closed, mapping = self.evaluate(decision, marks, force_closed=force_closed)
        digest = inputs_digest(evaluation, mapping.id if mapping else None)
        state = flow.DecisionState(decision.status, decision.reevaluations_used)
        event = flow.ATTAIN_ALL if evaluation.all_required_attained else \
            flow.CLOSE if closed else None
        if event is not None and flow.can(state, event):
            decided = self.decide(decision, event, evaluation, mapping, actor, digest,
                                  expected=decision.status)
            if decided and decision.status == flow.FAILED \
                    and self.offering.reevaluation_policy == "automatic":
                self.reevaluate(decision, actor=AUTOMATIC_POLICY, via="automatic", marks=marks)
        elif digest != decision.inputs_digest:  # a new decision has no digest yet
            self.snapshot(decision, evaluation, mapping, digest)
            self.summary.changed += 1
            queue_passback(self.db, decision, self.passbacks)

    def reevaluate(self, decision: Decision, *, actor: Actor, via: str,
                   closes_at: datetime | None = None, reason: str = "",
                   marks: Mapping[int, list[Mark]] | None = None) -> None:
        """Open the learner's one re-evaluation and evaluate them in it straight away (late
        marks may already attain what was missing)."""
        self.open_reevaluation(decision, self.mappings[2], actor=actor, via=via,
                               closes_at=closes_at, reason=reason)
        if marks is None:
            marks = self.load_marks([decision.person_id])[decision.person_id]
        self.step(decision, marks, actor=actor)


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
        summary.add(OfferingRun.of(db, settings, offering, now=now).run(person_ids))
    return summary
