"""Recognition of prior learning: an assessor's evidence per LO, checked against the rubrics.

A third way to `passed` (DESIGN): every required LO needs a description of the evidence, and a
level given for an LO must attain its threshold (no level: the threshold level is recorded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lti_tool.domain.evaluation import (
    ATTAINED,
    NOT_YET_ASSESSED,
    LearnerEvaluation,
    OutcomeLike,
    OutcomeResult,
)


def recognise(outcomes: Sequence[OutcomeLike], evidence: Mapping[str, Mapping[str, str]],
              ) -> tuple[LearnerEvaluation, list[str]]:
    """The evaluation the evidence amounts to, and every problem with it (empty when valid).

    `evidence` maps each LO code to {"evidence": text, "level": optional level code}.
    """
    problems: list[str] = []
    results: list[OutcomeResult] = []
    codes = {outcome.code for outcome in outcomes}
    problems += [f"{code}: not an outcome of this micro-credential"
                 for code in evidence if code not in codes]
    for outcome in outcomes:
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
                                     status=ATTAINED if text else NOT_YET_ASSESSED,
                                     percent=None, level=level if text else None,
                                     threshold=outcome.rubric.threshold))
    return LearnerEvaluation(tuple(results)), problems
