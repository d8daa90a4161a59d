"""The evidence form of a fast evaluation: what `result_to_dict(evaluate_learner(...))` gives.

The fast path (`compile_mapping`, `compile_marks`, `evaluate_fast`) decides status, level and
shown percent per LO; a stored snapshot also lists every source's input (its mark and percent).
`result_dicts` rebuilds exactly that list from the fast results and the learner's marks, without
`SourceInput`/`OutcomeResult` objects, so a run writes the very snapshot the general path
writes (property-tested byte-equal in tests/evaluation/test_store_fast_path.py). It covers the
first attempt (no carried-over results); the re-evaluation goes through `evaluate_learner`.
`SnapshotJson` writes the same snapshot straight as its JSON text (what the store writes),
from pieces kept per source and per mark (property-tested equal to `json.dumps` of it).
"""

from __future__ import annotations

import json
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


_dumps = json.dumps


class SnapshotJson:
    """`json.dumps(result_dicts(outcomes, sources, results, marks))`, written from pieces.

    Each source's opening (kind, ref, weight) is written once per run, and the rest of an
    input once per points mark (object) while it is kept: the marks of one batch share their
    objects (`grades.marks` makes one per distinct value). `forget` drops the marks (call it
    once a batch is done); a kept entry holds its mark, so its id is never reused meanwhile.
    """

    def __init__(self, outcomes: Sequence[OutcomeLike],
                 sources: Mapping[str, Sequence[SourceSpec]]) -> None:
        self._plan = [
            (outcome.rubric, f', "threshold": {_dumps(outcome.rubric.threshold)}, '
             '"carried_over": false, "inputs": [',
             [(spec.key, f'{{"kind": {_dumps(spec.kind)}, "ref": {_dumps(spec.ref)}, '
                         f'"weight": {_dumps(str(spec.weight))}, "percent": ')
              for spec in sources.get(outcome.code, ())])
            for outcome in outcomes]
        self._marks: dict[int, tuple[Mark, str]] = {}
        # Likewise each result's opening (evaluate_fast shares equal results' objects).
        self._heads: dict[int, tuple[FastResult, str]] = {}

    def forget(self) -> None:
        self._marks.clear()
        self._heads.clear()

    def _rest(self, mark: Mark, rubric: Rubric, levels: dict[str | None, str | None]) -> str:
        """An input after its opening: percent, score, maximum, level, time."""
        return (f'{_dumps(_percent_text(mark, rubric, levels))}, '
                f'"score": {_dumps(_text(mark.score))}, '
                f'"maximum": {_dumps(_text(mark.maximum))}, "level": {_dumps(mark.level)}, '
                f'"at": {_dumps(_iso(mark.at) if mark.at else None)}}}')

    def __call__(self, results: Sequence[FastResult],
                 marks: Mapping[tuple[str, str], Mark]) -> str:
        kept, heads = self._marks, self._heads
        parts: dict[str, str] = {}
        for (rubric, closing, specs), result in zip(self._plan, results, strict=True):
            tool_levels: dict[str | None, str | None] = {}
            inputs = []
            for key, opening in specs:
                mark = marks.get(key)
                if mark is None:
                    inputs.append(opening + _UNMARKED)
                    continue
                entry = kept.get(id(mark))
                if entry is not None and entry[0] is mark:
                    inputs.append(opening + entry[1])
                elif mark.kind == TOOL_RUBRIC:  # its percent depends on the LO's rubric
                    inputs.append(opening + self._rest(mark, rubric, tool_levels))
                else:
                    entry = kept[id(mark)] = (mark, self._rest(mark, rubric, tool_levels))
                    inputs.append(opening + entry[1])
            head = heads.get(id(result))
            if head is None or head[0] is not result:
                head = heads[id(result)] = (result, (
                    f'{_dumps(result.code)}: {{"code": {_dumps(result.code)}, '
                    f'"required": {_dumps(result.required)}, "status": {_dumps(result.status)}, '
                    f'"percent": {_dumps(_text(result.percent))}, '
                    f'"level": {_dumps(result.level)}{closing}'))
            parts[result.code] = f'{head[1]}{", ".join(inputs)}]}}'
        return "{" + ", ".join(parts.values()) + "}"


_UNMARKED = 'null, "score": null, "maximum": null, "level": null, "at": null}'


def share_attained(results: Sequence[FastResult]) -> Fraction:
    """`LearnerEvaluation.share_attained` of the same results."""
    required = [result for result in results if result.required]
    if not required:
        return Fraction(0)
    return Fraction(sum(1 for result in required if result.status == ATTAINED), len(required))
