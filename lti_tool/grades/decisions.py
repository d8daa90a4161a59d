"""Deciding: each learner of an offering evaluated under its mapping, and their decision moved
when the rules (`lti_tool.domain.decisions`) say so.

`OfferingRun` loads an offering's outcomes and mappings once and its learners' marks in bulk;
`step` evaluates one learner and applies at most the transitions the evaluation calls for
(through `Recorder`). `evaluate_changed` is what the sync calls after it commits.

`run` takes the fast path per batch of learners: their decisions are read as plain rows, each
first-attempt learner is evaluated with `evaluate_fast`, and one whose marks did not change
(the same inputs digest, no transition due) costs nothing more. A changed snapshot is rebuilt
from the fast results (`evaluation_inputs.result_dicts`, the same bytes as the general path)
and written in one executemany per batch; new decisions are inserted in bulk with theirs.
Everything else (a transition, the re-evaluation, a passed decision whose marks changed, a
decision this session already holds) goes through `step`, the general path, unchanged.
`run_general` is the general path for every learner: the reference the fast path is
property-tested against (tests/evaluation/test_store_fast_path.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Dialect, Table, bindparam, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from lti_tool.catalogue.service import outcomes_of
from lti_tool.domain import decisions as flow
from lti_tool.domain.actors import SYSTEM, Actor, labelled
from lti_tool.domain.evaluation import (
    FastOutcome,
    LearnerEvaluation,
    Mark,
    OutcomeLike,
    OutcomeResult,
    SourceSpec,
    compile_mapping,
    compile_marks,
    evaluate_fast,
    evaluate_learner,
    fast_all_required_attained,
)
from lti_tool.domain.evaluation_inputs import SnapshotJson, share_attained
from lti_tool.errors import NotFound
from lti_tool.grades.evidence import MarksDigest, inputs_digest
from lti_tool.grades.marks import (
    AttemptMarks,
    chunks,
    current_mapping,
    id_range,
    load_marks,
    mapping_sources,
)
from lti_tool.grades.passback import queue_passback, queue_passbacks
from lti_tool.grades.review import check_after_pass
from lti_tool.grades.transitions import Recorder, RunSummary, attempt_of, carried_results
from lti_tool.settings import Settings
from lti_tool.store.bulk import BulkInsert, conversions, driver_rows, placeholders
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Membership
from lti_tool.store.models.evaluation import Attempt, Decision, GradePassback, OutcomeMapping

AUTOMATIC_POLICY = labelled("policy:automatic")
DECISIONS = cast(Table, Decision.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)

# Built once; a run gives the ids (expression building costs more than these queries).
_MEMBERS = select(Membership.person_id).where(
    Membership.context_id == bindparam("context"), Membership.role == "learner",
    Membership.active.is_(True))
_DECIDED = select(Decision.person_id).where(Decision.offering_id == bindparam("offering"))
_LEARNERS = union(_MEMBERS, _DECIDED)
_SOME_LEARNERS = union(
    _MEMBERS.where(Membership.person_id.in_(bindparam("people", expanding=True))),
    _DECIDED.where(Decision.person_id.in_(bindparam("people", expanding=True))))
# The decision state the fast path needs, as plain rows, and the ids of a batch's decisions;
# by the range of the batch's person ids (as `grades.marks` reads their marks).
_IN_BATCH = (DECISIONS.c.offering_id == bindparam("offering"),
             DECISIONS.c.person_id.between(bindparam("first"), bindparam("last")))
_STATES = select(
    DECISIONS.c.person_id, DECISIONS.c.id, DECISIONS.c.status, DECISIONS.c.reevaluations_used,
    DECISIONS.c.inputs_digest, DECISIONS.c.mapping_id, DECISIONS.c.passed_via).where(*_IN_BATCH)
_IDS = select(DECISIONS.c.person_id, DECISIONS.c.id).where(*_IN_BATCH)


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
    fast: bool = True  # False: every learner through the general path (`run_general`)
    _compiled: tuple[FastOutcome, ...] | None = field(default=None, init=False, repr=False)
    _snapshot_json: SnapshotJson | None = field(default=None, init=False, repr=False)
    _digests: dict[tuple[int | None, int | None], MarksDigest] = field(
        default_factory=dict, init=False, repr=False)
    _writes: _DecisionWrites | None = field(default=None, init=False, repr=False)

    @classmethod
    def of(cls, db: Session, settings: Settings | None, offering: Offering, *,
           now: datetime | None = None, outcomes: list[OutcomeLike] | None = None,
           fast: bool = True) -> OfferingRun:
        run = cls(db=db, settings=settings, offering=offering, now=now or utcnow(),
                  outcomes=list[OutcomeLike](outcomes_of(db, offering.mc_version_id))
                  if outcomes is None else outcomes, fast=fast)
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
        """Active learners of the course and everyone with a decision (one query a batch)."""
        ids = {"context": self.offering.context_id, "offering": self.offering.id}
        if person_ids is not None:
            wanted = sorted(set(person_ids))
            found: set[int] = set()
            for chunk in chunks(wanted):
                found.update(self.db.scalars(_SOME_LEARNERS, {**ids, "people": chunk}))
            return sorted(found)
        return sorted(set(self.db.scalars(_LEARNERS, ids)))

    def load_marks(self, person_ids: list[int],
                   extra_specs: Mapping[str, Sequence[SourceSpec]] | None = None,
                   ) -> dict[int, AttemptMarks]:
        return load_marks(self.db, self.offering.id, person_ids,
                          (self.sources[1], self.sources[2], extra_specs or {}))

    def run(self, person_ids: Iterable[int] | None, *,
            only_status: str | None = None, actor: Actor = SYSTEM) -> RunSummary:
        """Evaluate the learners (all, or `person_ids`) and move their decisions; the fast
        path where it decides the same, the general one for the rest (module docstring)."""
        if not self.fast or only_status is not None:
            return self.run_general(person_ids, only_status=only_status, actor=actor)
        people = self.learner_ids(person_ids)
        self.db.flush()
        # Decisions this session already holds (maybe changed, not flushed) take the general
        # path: a bulk write must never go behind an object's back.
        held = {obj.person_id for obj in list(self.db.identity_map.values())
                if isinstance(obj, Decision) and obj.offering_id == self.offering.id}
        for chunk in chunks(people):
            self._fast_chunk(chunk, held, actor)
        return self.summary

    def run_general(self, person_ids: Iterable[int] | None, *,
                    only_status: str | None = None, actor: Actor = SYSTEM) -> RunSummary:
        """Every learner through `step` (the general evaluation and its snapshot)."""
        people = self.learner_ids(person_ids)
        for chunk in chunks(people):
            decisions = self.decisions_for(chunk)
            self._load_passbacks(decisions.values())
            marks = self.load_marks(chunk)
            for person_id in chunk:
                decision = decisions[person_id]
                if only_status is None or decision.status == only_status:
                    self.step(decision, marks[person_id], actor=actor)
        return self.summary

    def _load_passbacks(self, decisions: Iterable[Decision]) -> None:
        ids = [d.id for d in decisions]
        self.passbacks.update(dict.fromkeys(ids))
        for chunk in chunks(ids):
            self.passbacks.update({p.decision_id: p for p in self.db.scalars(
                select(GradePassback).where(GradePassback.decision_id.in_(chunk)))})

    # -- the fast path -------------------------------------------------------------------

    @property
    def compiled(self) -> tuple[FastOutcome, ...]:
        """The first attempt's mapping, compiled for `evaluate_fast` (once per run)."""
        if self._compiled is None:
            self._compiled = compile_mapping(self.outcomes, self.sources[1])
        return self._compiled

    @property
    def snapshot_json(self) -> SnapshotJson:
        """The first attempt's snapshots as the store writes them (once per run)."""
        if self._snapshot_json is None:
            self._snapshot_json = SnapshotJson(self.outcomes, self.sources[1])
        return self._snapshot_json

    def _digest(self, sources_of: int | None, mapping_id: int | None) -> MarksDigest:
        """`marks_digest` over every mapped source of the LOs, under the first attempt's
        current mapping (`sources_of` None) or another saved one (what a pass used)."""
        key = (sources_of, mapping_id)
        if key not in self._digests:
            sources: Mapping[str, Sequence[SourceSpec]] = self.sources[1]
            if sources_of is not None:
                row = self.db.get(OutcomeMapping, sources_of)
                if row is not None:
                    sources = mapping_sources(row)
            self._digests[key] = MarksDigest(
                [spec for outcome in self.outcomes for spec in sources.get(outcome.code, ())],
                mapping_id)
        return self._digests[key]

    def _fast_chunk(self, chunk: list[int], held: set[int], actor: Actor) -> None:
        batch = {"offering": self.offering.id, **id_range(chunk)}
        wanted = set(chunk)
        states = {row.person_id: row for row in self.db.execute(_STATES, batch)
                  if row.person_id in wanted}
        marks = self.load_marks(chunk)
        mapping = self.mappings[1]
        mapping_id = mapping.id if mapping else None
        digest_of = self._digest(None, mapping_id)
        snapshot_of = self.snapshot_json
        closed = self.closed
        compiled = self.compiled
        general: list[int] = []
        created: list[_Snapshot] = []
        changed: list[_Snapshot] = []
        skipped = 0
        for person_id in chunk:
            state = states.get(person_id)
            if person_id in held:
                general.append(person_id)
                continue
            status = state.status if state is not None else flow.IN_PROGRESS
            used = state.reevaluations_used if state is not None else 0
            if state is not None and status == flow.PASSED:
                # `check_after_pass` flags only when the digest under the pass's mapping moved
                if state.passed_via != "evaluation" or used == 0 and self._digest(
                        state.mapping_id, state.mapping_id)(
                        {m.key: m for m in marks[person_id].get(1, ())}) == state.inputs_digest:
                    skipped += 1
                else:
                    general.append(person_id)
                continue
            if status not in flow.OPEN_STATUSES:
                skipped += 1  # failed / failed_final: nothing changes until a grant
                continue
            if used != 0:
                general.append(person_id)  # the re-evaluation carries attempt 1's results
                continue
            learner_marks = marks[person_id].get(1, [])
            results = evaluate_fast(compiled, compile_marks(learner_marks), closed=closed)
            event = flow.ATTAIN_ALL if fast_all_required_attained(results) else \
                flow.CLOSE if closed else None
            if event is not None and flow.can(flow.DecisionState(status, used), event):
                general.append(person_id)  # a transition: evidence, badge, passback
                continue
            by_key = {mark.key: mark for mark in learner_marks}
            digest = digest_of(by_key)
            if state is not None and digest == state.inputs_digest:
                skipped += 1
                continue
            share = share_attained(results)
            snapshot = _Snapshot(person_id, state.id if state is not None else 0,
                                 snapshot_of(results, by_key),
                                 Decimal(share.numerator) / Decimal(share.denominator), digest,
                                 status)
            (created if state is None else changed).append(snapshot)
        # The pieces kept for this batch's marks go with them.
        snapshot_of.forget()
        for digest_of in self._digests.values():
            digest_of.forget()
        self.summary.evaluated += skipped + len(changed)
        self.summary.changed += len(changed)
        self._write_snapshots(changed, mapping_id)
        written = list(changed)
        # Every missing decision of the batch is created here, in learner order (the ids the
        # general path gives): with its snapshot, or bare for the general path to step.
        missing = sorted([*created, *(_Snapshot(pid) for pid in general
                                      if pid not in states and pid not in held)],
                         key=lambda row: row.person_id)
        inserted = self._insert_decisions(missing, mapping_id)
        if inserted is None:  # another process created some at the same moment
            general.extend(row.person_id for row in created)
            general.sort()
        else:
            for row in created:
                row.id = inserted[row.person_id]
            written += created
            self.summary.evaluated += len(created)
            self.summary.changed += len(created)
        if written and self.offering.grade_passback:
            written.sort(key=lambda row: row.person_id)
            queue_passbacks(self.db, self.offering,
                            [(row.id, row.status, row.share) for row in written])
            for row in written:  # queued behind the batch's loaded rows: read them again
                self.passbacks.pop(row.id, None)
        if general:
            decisions = self.decisions_for(general)
            self._load_passbacks(decisions.values())
            for person_id in general:
                self.step(decisions[person_id], marks[person_id], actor=actor)

    def _writing(self) -> _DecisionWrites:
        if self._writes is None:
            self._writes = _DecisionWrites(self.db.get_bind().dialect)
        return self._writes

    def _write_snapshots(self, rows: list[_Snapshot], mapping_id: int | None) -> None:
        """What `Recorder.snapshot` writes, for many decisions in one executemany."""
        if not rows:
            return
        writes = self._writing()
        at = writes.bind_time(self.now)
        self.db.connection().exec_driver_sql(writes.update_sql, [
            (row.outcomes, writes.bind_share(row.share), mapping_id, row.digest, at, row.id)
            for row in rows])

    def _insert_decisions(self, rows: list[_Snapshot], mapping_id: int | None,
                          ) -> dict[int, int] | None:
        """New decisions and their attempt 1, in bulk: what `decisions_for` creates, with the
        first snapshot where a row carries one. Their ids by person; None when one exists
        already (then nothing is written)."""
        if not rows:
            return {}
        writes = self._writing()
        offering = self.offering
        now = writes.bind_time(self.now)
        created_at = writes.bind_time(utcnow())
        decisions = [(
            offering.platform_id, offering.id, row.person_id, flow.IN_PROGRESS, 0, row.outcomes,
            writes.bind_share(row.share), mapping_id if row.digest else None, row.digest,
            now if row.digest else None, created_at) for row in rows]
        try:
            with self.db.begin_nested():
                connection = self.db.connection()
                writes.insert_decisions(connection, decisions)
                ids = dict(driver_rows(connection.execute(_IDS, {
                    "offering": offering.id, **id_range([row.person_id for row in rows])})))
                closes = writes.bind_time(offering.window_closes_at)
                writes.insert_attempts(connection, [
                    (ids[row.person_id], 1, now, closes, "offering", "", "{}") for row in rows])
        except IntegrityError:
            return None
        return ids

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


@dataclass(slots=True)
class _Snapshot:
    """A decision the fast path writes: its new snapshot in written form (a bare new decision
    for the general path to step: no digest)."""

    person_id: int
    id: int = 0
    outcomes: str = "{}"
    share: Decimal = Decimal(0)
    digest: str = ""
    status: str = flow.IN_PROGRESS


class _DecisionWrites:
    """The decision and attempt columns the fast path writes, in the driver's form for one
    dialect (the columns' own bind conversions; snapshots already JSON text)."""

    def __init__(self, dialect: Dialect) -> None:
        self.bind_share = conversions(DECISIONS, "share_attained", dialect)[0]
        self.bind_time = conversions(DECISIONS, "evaluated_at", dialect)[0]
        self.update_sql = placeholders(
            dialect, "UPDATE decision SET outcomes = ?, share_attained = ?, mapping_id = ?, "
            "inputs_digest = ?, evaluated_at = ? WHERE id = ?")
        self.insert_decisions = BulkInsert(dialect, DECISIONS, (
            "platform_id", "offering_id", "person_id", "status", "reevaluations_used",
            "outcomes", "share_attained", "mapping_id", "inputs_digest", "evaluated_at",
            "created_at"))
        self.insert_attempts = BulkInsert(dialect, ATTEMPTS, (
            "decision_id", "number", "opened_at", "closes_at", "granted_via", "reason",
            "results"))


def evaluate_changed(db: Session, settings: Settings, context_id: int,
                     person_ids: set[int] | None = None, *, now: datetime | None = None,
                     fast: bool = True) -> RunSummary:
    """Re-evaluate the learners of a course context (all, or only `person_ids`, the ones whose
    marks changed). Called by sync after it commits, and after mapping or rubric changes.
    `fast=False` forces the general path (the reference of tests and bench/evaluate.py)."""
    if person_ids is not None and not person_ids:
        return RunSummary()
    summary = RunSummary()
    for offering in db.scalars(select(Offering).where(Offering.context_id == context_id)
                               .order_by(Offering.id)):
        summary.add(OfferingRun.of(db, settings, offering, now=now, fast=fast)
                    .run(person_ids))
    return summary
