"""The evidence form of a fast evaluation: what `result_to_dict(evaluate_learner(...))` gives.

The fast path (`compile_mapping`, `compile_marks`, `evaluate_fast`) decides status, level and
shown percent per LO; a stored snapshot also lists every source's input (its mark and percent).
`result_dicts` rebuilds exactly that list from the fast results and the learner's marks, without
`SourceInput`/`OutcomeResult` objects, so a run writes the very snapshot the general path
writes (property-tested byte-equal in tests/evaluation/test_store_fast_path.py). It covers the
first attempt (no carried-over results); the re-evaluation goes through `evaluate_learner`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from lti_tool.domain.evaluation import (
    ATTAINED,
    TOOL_RUBRIC,
    FastResult,
    Mark,
    OutcomeLike,
    SourceSpec,
    mark_percent,
)
from lti_tool.domain.rubric import Rubric


@lru_cache(maxsize=65536)
def _points_percent(kind: str, score: Decimal | None, maximum: Decimal | None) -> str | None:
    """The shown percent of a points mark (a course has few distinct score/maximum pairs)."""
    percent = mark_percent(Mark(kind, "", score=score, maximum=maximum), _NO_RUBRIC)
    return None if percent is None else str(percent.display())


_NO_RUBRIC = Rubric((), threshold="")  # points marks never look at the rubric


def _percent_text(mark: Mark, rubric: Rubric, levels: dict[str | None, str | None]) -> str | None:
    if mark.kind != TOOL_RUBRIC:
        return _points_percent(mark.kind, mark.score, mark.maximum)
    if mark.level not in levels:
        percent = mark_percent(mark, rubric)
        levels[mark.level] = None if percent is None else str(percent.display())
    return levels[mark.level]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@lru_cache(maxsize=65536)
def _iso(at: datetime) -> str:
    """A mark's time as the snapshot shows it (marks of one sync share few times)."""
    return at.isoformat()


def result_dicts(outcomes: Sequence[OutcomeLike], sources: Mapping[str, Sequence[SourceSpec]],
                 results: Sequence[FastResult], marks: Mapping[tuple[str, str], Mark],
                 ) -> dict[str, dict[str, Any]]:
    """Per LO code, `result_to_dict` of the result `evaluate_learner` gives (no carried LOs).

    `results` are `evaluate_fast`'s for the same outcomes, sources and marks (by source key).
    """
    snapshot: dict[str, dict[str, Any]] = {}
    for outcome, result in zip(outcomes, results, strict=True):
        rubric = outcome.rubric
        tool_levels: dict[str | None, str | None] = {}
        inputs = []
        for spec in sources.get(outcome.code, ()):
            mark = marks.get(spec.key)
            if mark is None:
                inputs.append({"kind": spec.kind, "ref": spec.ref, "weight": str(spec.weight),
                               "percent": None, "score": None, "maximum": None, "level": None,
                               "at": None})
                continue
            inputs.append({
                "kind": spec.kind, "ref": spec.ref, "weight": str(spec.weight),
                "percent": _percent_text(mark, rubric, tool_levels),
                "score": _text(mark.score), "maximum": _text(mark.maximum),
                "level": mark.level, "at": _iso(mark.at) if mark.at else None})
        snapshot[result.code] = {
            "code": result.code, "required": result.required, "status": result.status,
            "percent": _text(result.percent), "level": result.level,
            "threshold": rubric.threshold, "carried_over": False, "inputs": inputs}
    return snapshot


def share_attained(results: Sequence[FastResult]) -> Fraction:
    """`LearnerEvaluation.share_attained` of the same results."""
    required = [result for result in results if result.required]
    if not required:
        return Fraction(0)
    return Fraction(sum(1 for result in required if result.status == ATTAINED), len(required))
