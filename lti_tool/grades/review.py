"""Review flags: a mark that changes after a pass flags the case; the pass itself stands.

A badge is never silently revoked (DESIGN): the instructor reviews the flag, and revoking, if
needed, is the Office's explicit act with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.domain.actors import Actor
from lti_tool.domain.evaluation import (
    RULE_VERSION,
    Mark,
    OutcomeLike,
    SourceSpec,
    evaluate_learner,
    result_to_dict,
)
from lti_tool.errors import Conflict
from lti_tool.grades.evidence import append_evidence, inputs_digest
from lti_tool.grades.marks import mapping_sources
from lti_tool.grades.transitions import Recorder, carried_results
from lti_tool.store.db import utcnow
from lti_tool.store.models.evaluation import Decision, OutcomeMapping, ReviewFlag


def check_after_pass(recorder: Recorder, decision: Decision, outcomes: Sequence[OutcomeLike],
                     current_sources: Mapping[int, Mapping[str, Sequence[SourceSpec]]],
                     marks: Mapping[int, list[Mark]]) -> None:
    """Flag a passed decision whose marks changed (under the mapping it passed with)."""
    if decision.passed_via != "evaluation":
        return
    db = recorder.db
    attempt = decision.reevaluations_used + 1
    pass_mapping = db.get(OutcomeMapping, decision.mapping_id) if decision.mapping_id else None
    sources = mapping_sources(pass_mapping) if pass_mapping else current_sources[attempt]
    carried = carried_results(decision) if attempt == 2 else None
    evaluation = evaluate_learner(outcomes, sources, marks.get(attempt, []), closed=False,
                                  carried=carried)
    digest = inputs_digest(evaluation, decision.mapping_id)
    if digest == decision.inputs_digest:
        return
    already = db.scalar(select(ReviewFlag.id).where(
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
    db.add(ReviewFlag(decision_id=decision.id, offering_id=decision.offering_id,
                      person_id=decision.person_id, reason=reason, inputs_digest=digest,
                      details=details, created_at=recorder.now))
    append_evidence(db, platform_id=decision.platform_id, event="review_flagged",
                    payload={"decision_id": decision.id, "reason": reason,
                             "outcomes": [result_to_dict(r) for r in evaluation.results],
                             "at": recorder.now, "rule_version": RULE_VERSION},
                    decision_id=decision.id, offering_id=decision.offering_id,
                    person_id=decision.person_id)
    recorder.summary.flagged += 1
    recorder.summary.changed += 1


def resolve_flag(db: Session, flag: ReviewFlag, actor: Actor, *,
                 now: datetime | None = None) -> ReviewFlag:
    """The instructor has reviewed a flagged pass (revoking, if needed, is the Office's)."""
    if flag.resolved_at is not None:
        raise Conflict("This review flag is already closed.")
    flag.resolved_at, flag.resolved_by = now or utcnow(), actor.person_id
    decision = db.get(Decision, flag.decision_id)
    assert decision is not None
    append_evidence(db, platform_id=decision.platform_id, event="review_resolved",
                    payload={"decision_id": decision.id, "flag_id": flag.id,
                             "actor": actor.who(), "at": flag.resolved_at},
                    decision_id=decision.id, offering_id=decision.offering_id,
                    person_id=decision.person_id)
    return flag
