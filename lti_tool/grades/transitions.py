"""Applying a decision transition: the domain rule, then snapshot, evidence, badge, passback.

`Recorder` is what every change of a decision goes through, in the caller's transaction: it
asks `lti_tool.domain.decisions` whether the event is allowed, stores the evaluation that led
to it, appends the evidence record, hands a pass to the badges area (`issue_on_pass`, same
transaction: a learner is never `passed` without their credential), and queues the score for
the LMS gradebook. Opening the one re-evaluation is a transition too (`open_reevaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.badges.issuance import issue_on_pass
from lti_tool.domain import decisions as flow
from lti_tool.domain.actors import Actor
from lti_tool.domain.errors import IllegalTransition
from lti_tool.domain.evaluation import (
    RULE_VERSION,
    LearnerEvaluation,
    result_from_dict,
    result_to_dict,
)
from lti_tool.errors import BadRequest, Conflict
from lti_tool.grades.evidence import append_evidence
from lti_tool.grades.passback import queue_passback
from lti_tool.settings import Settings, load_settings
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.evaluation import (
    Attempt,
    Decision,
    GradePassback,
    OutcomeMapping,
    ReevaluationRequest,
)


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


def attempt_of(decision: Decision, number: int) -> Attempt | None:
    return next((a for a in decision.attempts if a.number == number), None)


def carried_results(decision: Decision) -> dict[str, Any]:
    """The first attempt's results, carried into the re-evaluation (attained LOs stay)."""
    first = attempt_of(decision, 1)
    return {code: result_from_dict(data) for code, data in (first.results if first else {}).items()}


@dataclass
class Recorder:
    """Records decision changes of one offering at one moment (`now`)."""

    db: Session
    settings: Settings | None
    offering: Offering
    now: datetime
    summary: RunSummary = field(default_factory=RunSummary)
    # Passback rows per decision id, loaded per batch (None: the decision has none yet).
    passbacks: dict[int, GradePassback | None] = field(default_factory=dict)

    def snapshot(self, decision: Decision, evaluation: LearnerEvaluation,
                 mapping: OutcomeMapping | None, digest: str) -> None:
        decision.outcomes = {r.code: result_to_dict(r) for r in evaluation.results}
        decision.share_attained = Decimal(evaluation.share_attained.numerator) / \
            Decimal(evaluation.share_attained.denominator)
        decision.mapping_id = mapping.id if mapping else None
        decision.inputs_digest = digest
        decision.evaluated_at = self.now

    def decide(self, decision: Decision, event: str, evaluation: LearnerEvaluation,
               mapping: OutcomeMapping | None, actor: Actor, digest: str,
               details: dict[str, Any] | None = None, expected: str | None = None) -> bool:
        """Apply a transition: snapshot, evidence, badge on a pass, passback. False when an
        automatic step was dropped.

        The decision row is locked and re-read first (PostgreSQL; SQLite serialises writers),
        so two processes evaluating the same learner decide once: an automatic step whose
        `expected` status has meanwhile changed is dropped.
        """
        if decision.id is not None:
            self.db.refresh(decision, with_for_update=True)
            if expected is not None and decision.status != expected:
                return False
        before = flow.DecisionState(decision.status, decision.reevaluations_used)
        try:
            after = flow.transition(before, event)
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from exc
        attempt_no = before.attempt
        self.snapshot(decision, evaluation, mapping, digest)
        decision.status = after.status
        decision.reevaluations_used = after.reevaluations_used
        decision.decided_at = self.now
        attempt = attempt_of(decision, attempt_no)
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
            self._issue_badge(decision, evaluation)
        elif after.status == flow.FAILED:
            self.summary.failed += 1
        elif after.status == flow.FAILED_FINAL:
            self.summary.failed_final += 1
        queue_passback(self.db, decision, self.passbacks)
        return True

    def _issue_badge(self, decision: Decision, evaluation: LearnerEvaluation) -> None:
        """Hand the pass to the badges area in this transaction."""
        issue_on_pass(self.db, self.settings or load_settings(), person_id=decision.person_id,
                      mc_version_id=self.offering.mc_version_id, offering_id=self.offering.id,
                      outcome_levels=evaluation.outcome_levels(), passed_at=self.now)

    def _archive(self, decision: Decision, from_status: str, event: str,
                 evaluation: LearnerEvaluation, mapping: OutcomeMapping | None, actor: Actor,
                 attempt_no: int, details: dict[str, Any] | None) -> None:
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
            "actor": actor.who(), "at": self.now, "details": details or {},
        }
        append_evidence(self.db, platform_id=decision.platform_id, event=decision.status,
                        payload=payload, decision_id=decision.id,
                        offering_id=decision.offering_id, person_id=decision.person_id)

    def open_reevaluation(self, decision: Decision, mapping: OutcomeMapping | None, *,
                          actor: Actor, via: str, closes_at: datetime | None = None,
                          reason: str = "") -> None:
        """Open attempt 2 (the one re-evaluation); the caller evaluates the learner in it."""
        before = flow.DecisionState(decision.status, decision.reevaluations_used)
        if not flow.can(before, flow.GRANT_REEVALUATION):
            try:
                flow.transition(before, flow.GRANT_REEVALUATION)
            except IllegalTransition as exc:
                raise Conflict(str(exc)) from exc
        closes_at = closes_at or self.now + timedelta(days=max(
            1, self.offering.reevaluation_window_days or flow.DEFAULT_REEVALUATION_WINDOW_DAYS))
        if closes_at <= self.now:
            raise BadRequest("The re-evaluation must close in the future.")
        try:
            with self.db.begin_nested():
                decision.attempts.append(Attempt(
                    number=2, opened_at=self.now, closes_at=closes_at,
                    granted_by=actor.person_id, granted_via=via, reason=reason[:2000],
                    results={}))
                self.db.flush()
        except IntegrityError as exc:
            raise Conflict("Cannot grant a re-evaluation: this learner has already had their "
                           "one re-evaluation (Art. 9/3 allows it once).") from exc
        evaluation = LearnerEvaluation(tuple(carried_results(decision).values()))
        self.decide(decision, flow.GRANT_REEVALUATION, evaluation, mapping, actor,
                    decision.inputs_digest,
                    details={"closes_at": closes_at, "via": via, "reason": reason[:2000],
                             "reassessed": evaluation.not_attained_codes()})
        self.summary.reevaluations += 1
        request = self.db.scalar(select(ReevaluationRequest).where(
            ReevaluationRequest.decision_id == decision.id))
        if request is not None and request.status == "pending":
            request.status, request.handled_at = "granted", self.now
            request.handled_by = actor.person_id
