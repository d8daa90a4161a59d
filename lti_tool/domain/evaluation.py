"""From marks to a level per learning outcome (LO), exactly and explainably.

Rules (DESIGN "Mapping"; directive Art. 9/2: learners are scored on previously shared rubrics):

- Each LO draws on weighted sources: a gradebook item (percent = score / maximum), an LMS rubric
  criterion (points of the chosen level / the criterion's maximum points), or a rubric level an
  instructor gives in the tool. A tool rubric level counts as the lower bound of that level, so a
  level given directly comes back as that very level ("used as is").
- LO percent = weighted mean of its sources' percents, computed with `Fraction` so a bound of 70
  is met by 7/10 and by weights 2:1 over 60 and 90, and never missed by 69.99999.
- Level = the rubric's highest level whose lower bound <= percent; attained = level >= threshold.
- Missing marks: a missing mark counts as 0 when we ask whether the LO is already *certainly*
  attained (raising marks never lowers the percent, so an early "attained" is final). Otherwise,
  before the window closes the LO is "not yet assessed"; at close the missing marks count as 0
  and the LO is not attained.

Nothing here does I/O; the service in `lti_tool.grades.evaluation` feeds it from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from math import gcd
from typing import Any, NamedTuple, Protocol

from lti_tool.domain.errors import FieldProblem, ValidationFailed
from lti_tool.domain.rubric import Rubric

GRADE_ITEM = "grade_item"
LMS_RUBRIC = "lms_rubric"
TOOL_RUBRIC = "tool_rubric"
SOURCE_KINDS = (GRADE_ITEM, LMS_RUBRIC, TOOL_RUBRIC)

ATTAINED = "attained"
NOT_ATTAINED = "not_attained"
NOT_YET_ASSESSED = "not_yet_assessed"

# Bumped when the evaluation rules change; archived with every decision.
RULE_VERSION = "evaluation/1 (weighted mean, exact bounds, missing=0 at close)"

MAX_WEIGHT = Decimal(1000)
# Percents shown and archived are floored, so a shown 70.0000 never hides a 69.99999.
DISPLAY_QUANTUM = Decimal("0.0001")


class OutcomeLike(Protocol):
    """What evaluation needs of an LO (the catalogue's `outcomes_of` returns such objects)."""

    @property
    def code(self) -> str: ...

    @property
    def required(self) -> bool: ...

    @property
    def rubric(self) -> Rubric: ...


@dataclass(frozen=True)
class Outcome:
    """A plain LO for tests and benchmarks; anything shaped like `OutcomeLike` works too."""

    code: str
    rubric: Rubric
    required: bool = True


@dataclass(frozen=True)
class SourceSpec:
    """One weighted source of an LO: `ref` names the grade item, criterion or LO being scored."""

    kind: str
    ref: str
    weight: Decimal = Decimal(1)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.ref)


@dataclass(frozen=True)
class Mark:
    """A learner's mark on one source: points out of a maximum, or a rubric level code."""

    kind: str
    ref: str
    score: Decimal | None = None
    maximum: Decimal | None = None
    level: str | None = None
    at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.ref)


class SourceInput(NamedTuple):
    """How one source contributed: kept in the evidence record to explain the level.
    (A named tuple: a run builds one per source and learner, and these are cheap.)"""

    kind: str
    ref: str
    weight: Decimal
    percent: Decimal | None  # None: no usable mark
    score: Decimal | None = None
    maximum: Decimal | None = None
    level: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class OutcomeResult:
    code: str
    required: bool
    status: str  # attained | not_attained | not_yet_assessed
    percent: Decimal | None  # floored to DISPLAY_QUANTUM; None when nothing is marked yet
    level: str | None
    threshold: str
    inputs: tuple[SourceInput, ...] = ()
    carried_over: bool = False

    @property
    def attained(self) -> bool:
        return self.status == ATTAINED


@dataclass(frozen=True)
class LearnerEvaluation:
    results: tuple[OutcomeResult, ...]

    @property
    def by_code(self) -> dict[str, OutcomeResult]:
        return {result.code: result for result in self.results}

    @property
    def required(self) -> list[OutcomeResult]:
        return [result for result in self.results if result.required]

    @property
    def all_required_attained(self) -> bool:
        required = self.required
        return bool(required) and all(result.attained for result in required)

    @property
    def share_attained(self) -> Fraction:
        """Share of required LOs attained (0..1): the grade passed back to the LMS."""
        required = self.required
        if not required:
            return Fraction(0)
        return Fraction(sum(1 for result in required if result.attained), len(required))

    def not_attained_codes(self) -> list[str]:
        return [result.code for result in self.results if not result.attained]

    def outcome_levels(self) -> dict[str, str]:
        return {result.code: result.level for result in self.results if result.level}


class Exact:
    """A non-negative rational `num / den` kept as two ints.

    As exact as `Fraction` but without a gcd per operation (a run evaluates millions of
    sources). It compares exactly with `Decimal`, so `Rubric.level_for(exact)` decides levels
    with no rounding: `Decimal(70) <= Exact(7, 10) * 100` holds, 69.99999 never sneaks in.
    """

    __slots__ = ("num", "den")

    def __init__(self, num: int, den: int = 1) -> None:
        self.num, self.den = num, den

    @classmethod
    def of(cls, value: Decimal | int) -> Exact:
        num, den = value.as_integer_ratio()
        return cls(num, den)

    def _diff(self, other: object) -> int:
        if isinstance(other, Exact):
            num, den = other.num, other.den
        elif isinstance(other, (Decimal, int)):
            num, den = other.as_integer_ratio()
        elif isinstance(other, Fraction):
            num, den = other.numerator, other.denominator
        else:
            return NotImplemented  # type: ignore[no-any-return]
        return self.num * den - num * self.den

    def __lt__(self, other: object) -> bool:
        return self._diff(other) < 0

    def __le__(self, other: object) -> bool:
        return self._diff(other) <= 0

    def __gt__(self, other: object) -> bool:
        return self._diff(other) > 0

    def __ge__(self, other: object) -> bool:
        return self._diff(other) >= 0

    def __eq__(self, other: object) -> bool:
        return self._diff(other) == 0

    __hash__ = None  # type: ignore[assignment]

    def as_fraction(self) -> Fraction:
        return Fraction(self.num, self.den)

    def display(self) -> Decimal:
        """Floored to DISPLAY_QUANTUM, so a shown 70.0000 never hides a 69.99999."""
        return Decimal((self.num * 10_000) // self.den).scaleb(-4)

    def __repr__(self) -> str:
        return f"Exact({self.num}, {self.den})"


ZERO = Exact(0)
FULL = Exact(100)


def mark_percent(mark: Mark, rubric: Rubric) -> Exact | None:
    """Exact percent (0..100) a mark stands for, or None when it carries nothing usable."""
    if mark.kind == TOOL_RUBRIC:
        if mark.level is None:
            return None
        try:
            return Exact.of(rubric.levels[rubric.rank(mark.level)].lower_bound)
        except KeyError:
            return None
    if mark.score is None or mark.maximum is None or mark.maximum <= 0:
        return None
    score_num, score_den = mark.score.as_integer_ratio()
    max_num, max_den = mark.maximum.as_integer_ratio()
    # Scores above the maximum (extra credit) or below 0 are clamped so one source cannot
    # make up for another beyond its own weight.
    if score_num <= 0:
        return ZERO
    if score_num * max_den >= max_num * score_den:
        return FULL
    return Exact(100 * score_num * max_den, score_den * max_num)


def mapping_problems(
    outcomes: Iterable[OutcomeLike], sources: Mapping[str, Sequence[SourceSpec]],
    known_refs: Mapping[str, set[str]] | None = None,
) -> list[FieldProblem]:
    """Every problem of a mapping: unknown LO codes, kinds, refs, weights, duplicates."""
    codes = {outcome.code for outcome in outcomes}
    found: list[FieldProblem] = []
    for code, specs in sources.items():
        if code not in codes:
            found.append(FieldProblem(f"outcomes.{code}", "is not an outcome of this offering"))
            continue
        seen: set[tuple[str, str]] = set()
        for index, spec in enumerate(specs):
            path = f"outcomes.{code}.sources[{index}]"
            if spec.kind not in SOURCE_KINDS:
                found.append(FieldProblem(f"{path}.kind",
                                          f"must be one of {', '.join(SOURCE_KINDS)}"))
            elif known_refs is not None and spec.kind != TOOL_RUBRIC and \
                    spec.ref not in known_refs.get(spec.kind, set()):
                found.append(FieldProblem(f"{path}.ref",
                                          f"{spec.ref!r} is not a {spec.kind} of this course"))
            if not isinstance(spec.weight, Decimal) or not spec.weight.is_finite() or \
                    not Decimal(0) < spec.weight <= MAX_WEIGHT:
                found.append(FieldProblem(f"{path}.weight",
                                          f"must be a number above 0 and at most {MAX_WEIGHT}"))
            if spec.key in seen:
                found.append(FieldProblem(path, "the same source is mapped twice"))
            seen.add(spec.key)
    return found


def validate_mapping(
    outcomes: Iterable[OutcomeLike], sources: Mapping[str, Sequence[SourceSpec]],
    known_refs: Mapping[str, set[str]] | None = None,
) -> None:
    found = mapping_problems(outcomes, sources, known_refs)
    if found:
        raise ValidationFailed(found)


def _weighted(parts: Sequence[tuple[Decimal, Exact | None]]) -> tuple[Exact, bool]:
    """Weighted mean with missing percents counted as 0, and whether anything is missing
    (an LO with no sources at all misses everything)."""
    weight_num, weight_den, total_num, total_den = 0, 1, 0, 1
    missing = not parts
    for weight, percent in parts:
        w_num, w_den = weight.as_integer_ratio()
        weight_num, weight_den = weight_num * w_den + w_num * weight_den, weight_den * w_den
        if percent is None:
            missing = True
            continue
        term_num, term_den = w_num * percent.num, w_den * percent.den
        total_num, total_den = total_num * term_den + term_num * total_den, total_den * term_den
    if weight_num <= 0:
        return ZERO, missing
    return Exact(total_num * weight_den, total_den * weight_num), missing



def outcome_status(attained: bool, *, missing: bool, closed: bool) -> str:
    """Attained at the threshold; else not yet assessed while a source is unmarked and the
    window is open; else not attained. (Both evaluation paths ask this.)"""
    if attained:
        return ATTAINED
    if missing and not closed:
        return NOT_YET_ASSESSED
    return NOT_ATTAINED

def evaluate_outcome(
    outcome: OutcomeLike,
    specs: Sequence[SourceSpec],
    marks: Mapping[tuple[str, str], Mark],
    *,
    closed: bool,
) -> OutcomeResult:
    """Level and status of one LO from its sources and the learner's marks."""
    rubric = outcome.rubric
    inputs: list[SourceInput] = []
    parts: list[tuple[Decimal, Exact | None]] = []
    for spec in specs:
        mark = marks.get(spec.key)
        percent = mark_percent(mark, rubric) if mark is not None else None
        parts.append((spec.weight, percent))
        inputs.append(SourceInput(
            kind=spec.kind, ref=spec.ref, weight=spec.weight,
            percent=None if percent is None else percent.display(),
            score=mark.score if mark else None, maximum=mark.maximum if mark else None,
            level=mark.level if mark else None, at=mark.at if mark else None,
        ))
    floor_percent, missing = _weighted(parts)
    nothing_marked = not parts or all(percent is None for _, percent in parts)
    level = rubric.level_for(floor_percent)  # type: ignore[arg-type]  # exact, see Exact
    status = outcome_status(bool(parts) and not nothing_marked and rubric.attains(level.code),
                            missing=missing, closed=closed)
    shown = not nothing_marked or closed
    return OutcomeResult(
        code=outcome.code, required=outcome.required, status=status,
        percent=floor_percent.display() if shown else None,
        level=level.code if shown else None, threshold=rubric.threshold, inputs=tuple(inputs),
    )


def evaluate_learner(
    outcomes: Sequence[OutcomeLike],
    sources: Mapping[str, Sequence[SourceSpec]],
    marks: Iterable[Mark],
    *,
    closed: bool,
    carried: Mapping[str, OutcomeResult] | None = None,
) -> LearnerEvaluation:
    """Every LO of one learner. `carried` LOs (attained in the first attempt) are kept as is:
    a re-evaluation assesses only what was not attained (DESIGN "Decision")."""
    by_key = {mark.key: mark for mark in marks}
    carried = carried or {}
    results: list[OutcomeResult] = []
    for outcome in outcomes:
        previous = carried.get(outcome.code)
        if previous is not None and previous.attained:
            results.append(OutcomeResult(
                code=previous.code, required=outcome.required, status=ATTAINED,
                percent=previous.percent, level=previous.level, threshold=previous.threshold,
                inputs=previous.inputs, carried_over=True,
            ))
            continue
        results.append(evaluate_outcome(outcome, sources.get(outcome.code, ()), by_key,
                                        closed=closed))
    return LearnerEvaluation(tuple(results))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def result_to_dict(result: OutcomeResult) -> dict[str, Any]:
    """A JSON-ready form of a result (Decimals as strings), for snapshots and evidence."""
    return {
        "code": result.code, "required": result.required, "status": result.status,
        "percent": _text(result.percent), "level": result.level, "threshold": result.threshold,
        "carried_over": result.carried_over,
        "inputs": [
            {"kind": i.kind, "ref": i.ref, "weight": _text(i.weight), "percent": _text(i.percent),
             "score": _text(i.score), "maximum": _text(i.maximum), "level": i.level,
             "at": i.at.isoformat() if i.at else None}
            for i in result.inputs
        ],
    }


def result_from_dict(data: Mapping[str, Any]) -> OutcomeResult:
    """Inverse of `result_to_dict`: attempt 2 carries attempt 1's attained results over."""
    return OutcomeResult(
        code=data["code"], required=bool(data["required"]), status=data["status"],
        percent=_decimal(data.get("percent")), level=data.get("level"),
        threshold=data["threshold"], carried_over=bool(data.get("carried_over")),
        inputs=tuple(
            SourceInput(kind=i["kind"], ref=i["ref"], weight=Decimal(i["weight"]),
                        percent=_decimal(i.get("percent")), score=_decimal(i.get("score")),
                        maximum=_decimal(i.get("maximum")), level=i.get("level"),
                        at=datetime.fromisoformat(i["at"]) if i.get("at") else None)
            for i in data.get("inputs", ())
        ),
    )


# -- Fast path: the same decision over plain ints -------------------------------------------
# A mapping is compiled once per offering (weights scaled to integers, rubric bounds as integers
# in DISPLAY_QUANTUM units where they are exact in them, highest first; tool-rubric levels as
# their bounds) and marks once per learner into plain tuples; the evaluation then does integer
# arithmetic only: no SourceInput, no Exact, no Decimal compares, no per-mark objects.
#
# Exactness: a percent p is kept as an integer ratio (num, den). Nearly every percent is a whole
# number of 1/630000 (= 1/10000 / 63: points out of 10, 20, 25 but also out of 3, 7, 9, 30 or
# 45); those come as (p * 630000, 630000) and add up as one integer `whole`, any other as a
# separate exact fraction. The floored shown percent q = floor(10000 * mean) is then one integer
# division; a bound that is a whole number B of 1/10000 (70, 85.5, 33.3333) is met iff B <= q,
# since for an integer n and any real x, n <= x iff n <= floor(x). Bounds finer than that are
# compared by cross-multiplying.
# It gives the status, level and shown percent of `evaluate_learner` (property-tested equal in
# tests/evaluation/test_fast_evaluation.py); use `evaluate_learner` where the evidence inputs
# or carried-over LOs are needed.

_SCALE = 10_000  # 1 / DISPLAY_QUANTUM
_UNIT = 63 * _SCALE  # 630,000: the unit of a percent in `whole`


class FastOutcome(NamedTuple):
    """One LO as `compile_mapping` compiles it (build it only with that)."""

    code: str
    required: bool
    refs: tuple[tuple[tuple[str, str], int], ...]  # (source key, integer weight)
    total_weight: int
    bounds: tuple[tuple[str, int, int], ...]  # (level code, num, den), as the rubric lists them
    attaining: frozenset[str]  # level codes that attain the outcome (`Rubric.attains`)
    tool_levels: Mapping[str, tuple[int, int]]  # tool-rubric level code -> its bound, as a mark
    # (bound * 10000, level code, attains), highest first; None when a bound is finer than
    # 1/10000 or the bounds do not increase (then the bounds are compared exactly).
    steps: tuple[tuple[int, str, bool], ...] | None
    points: tuple[tuple[tuple[str, str], int], ...]  # the refs scored in points
    tools: tuple[tuple[tuple[str, str], int], ...]  # the tool-rubric refs
    unmarked: FastResult  # the result while nothing is marked
    # Results already built (with `steps` only: the level then follows from the shown percent
    # q), by 8 * q + (4 if marked) + (2 if missing) + (1 if closed): learners with equal
    # results share one object, so a run builds (and the collector tracks) few. Bounded by
    # _SHARED_MAX.
    shared: dict[int, FastResult]


class FastResult(NamedTuple):
    code: str
    required: bool
    status: str
    percent: Decimal | None
    level: str | None


def _normal(num: int, den: int) -> tuple[int, int]:
    """A percent num/den as compile_marks gives it: (p * 630000, 630000) when that is an
    integer, else in lowest terms."""
    scaled, rest = divmod(num * _UNIT, den)
    if not rest:
        return (scaled, _UNIT)
    common = gcd(num, den)
    return (num // common, den // common)


def _steps(rubric: Rubric) -> tuple[tuple[int, str, bool], ...] | None:
    steps: list[tuple[int, str, bool]] = []
    for level in rubric.levels:
        num, den = level.lower_bound.as_integer_ratio()
        scaled, rest = divmod(num * _SCALE, den)
        if rest or (steps and scaled <= steps[-1][0]):
            return None
        steps.append((scaled, level.code, rubric.attains(level.code)))
    return tuple(reversed(steps)) or None


def compile_mapping(outcomes: Sequence[OutcomeLike],
                    sources: Mapping[str, Sequence[SourceSpec]]) -> tuple[FastOutcome, ...]:
    compiled = []
    for outcome in outcomes:
        specs = sources.get(outcome.code, ())
        ratios = [spec.weight.as_integer_ratio() for spec in specs]
        scale = 1
        for _num, den in ratios:
            scale = scale * den // gcd(scale, den)
        refs = tuple((spec.key, num * (scale // den)) for spec, (num, den) in zip(specs, ratios,
                                                                               strict=True))
        rubric = outcome.rubric
        bounds = tuple((level.code, *level.lower_bound.as_integer_ratio())
                       for level in rubric.levels)
        tool_levels: dict[str, tuple[int, int]] = {}
        for code, num, den in bounds:
            tool_levels.setdefault(code, _normal(num, den))  # the first, as `Rubric.rank`
        compiled.append(FastOutcome(
            code=outcome.code, required=outcome.required, refs=refs,
            total_weight=sum(weight for _key, weight in refs), bounds=bounds,
            attaining=frozenset(code for code, _n, _d in bounds if rubric.attains(code)),
            tool_levels=tool_levels, steps=_steps(rubric),
            points=tuple(ref for ref in refs if ref[0][0] != TOOL_RUBRIC),
            tools=tuple(ref for ref in refs if ref[0][0] == TOOL_RUBRIC),
            unmarked=FastResult(outcome.code, outcome.required, NOT_YET_ASSESSED, None, None),
            shared={}))
    return tuple(compiled)


def compile_marks(marks: Iterable[Mark]) -> dict[tuple[str, str], tuple[int, int] | str | None]:
    """Per source key: the exact percent as (num, den), a tool-rubric level code, or None.

    Scores and maxima are `Decimal` (or int) as `Mark` declares. The percent of each distinct
    (score, maximum) is computed once and kept (a course has few), keyed by their texts: a
    Decimal's text names exactly one value and reads back as it, and it costs several times
    less to make and hash than the Decimal's own hash (not cached yet on a Decimal just read
    from the store).
    """
    return {(mark.kind, mark.ref): mark.level if mark.kind == TOOL_RUBRIC
            else _RATIOS[f"{mark.score!s}/{mark.maximum!s}"] for mark in marks}


class _RatioCache(dict[str, "tuple[int, int] | None"]):
    """"score/maximum" (their texts) -> `_score_ratio`, bounded."""

    def __missing__(self, texts: str) -> tuple[int, int] | None:
        score, maximum = (None if text == "None" else Decimal(text)
                          for text in texts.split("/"))
        ratio = _score_ratio(score, maximum)
        if len(self) < _RATIOS_MAX:
            self[texts] = ratio
        return ratio


_RATIOS = _RatioCache()
_RATIOS_MAX = 1 << 16


def _score_ratio(score: Decimal | None, maximum: Decimal | None) -> tuple[int, int] | None:
    """`mark_percent` of a points mark as (num, den)."""
    if score is None or maximum is None or maximum <= 0:
        return None
    score_num, score_den = score.as_integer_ratio()
    max_num, max_den = maximum.as_integer_ratio()
    if score_num <= 0:
        return _ZERO_RATIO
    if score_num * max_den >= max_num * score_den:
        return _FULL_RATIO
    return _normal(100 * score_num * max_den, score_den * max_num)


_ZERO_RATIO, _FULL_RATIO = (0, _UNIT), (100 * _UNIT, _UNIT)

# Shown percents by q = percent * 10000 (a run shows few distinct ones); bounded.
_SHOWN: dict[int, Decimal] = {}
_SHOWN_MAX = 1 << 16
_SHARED_MAX = 1 << 12  # results kept per compiled LO
_new_result = tuple.__new__


def evaluate_fast(compiled: Sequence[FastOutcome],
                  marks: Mapping[tuple[str, str], tuple[int, int] | str | None], *,
                  closed: bool) -> tuple[FastResult, ...]:
    """Status, level and shown percent of every LO, as `evaluate_learner` decides them.

    `marks` as `compile_marks` gives them: per points source an exact percent (num, den) with
    den > 0 (any such pair works, not only the ones compile_marks makes) or None, per
    tool-rubric source a level code or None.
    """
    # Points refs get (num, den) or None, tool-rubric refs a level code or None.
    get: Callable[[tuple[str, str]], Any] = marks.get
    shown_get = _SHOWN.get
    shut = 1 if closed else 0
    results = []
    for (code, required, refs, total, bounds, attaining, tool_levels, steps, points, tools,
         unmarked, shared) in compiled:
        whole = 0  # sum of weight * p * 630000 over the percents p exact in 1/630000
        f_num, f_den = 0, 1  # sum of weight * p over the other percents
        missing = 0 if refs else 2  # 2: a source is unmarked (or there is none)
        marked = 0  # 4: a source is marked
        for key, weight in points:
            value = get(key)
            if value is None:
                missing = 2
                continue
            marked = 4
            p_num, p_den = value
            if p_den == 630_000:  # _UNIT
                whole += weight * p_num
            else:
                f_num, f_den = f_num * p_den + weight * p_num * f_den, f_den * p_den
        for key, weight in tools:  # (mostly none)
            value = get(key)
            if value.__class__ is not tuple:
                value = tool_levels.get(value)  # a level code
            if value is None:
                missing = 2
                continue
            marked = 4
            p_num, p_den = value
            if p_den == 630_000:  # _UNIT
                whole += weight * p_num
            else:
                f_num, f_den = f_num * p_den + weight * p_num * f_den, f_den * p_den
        if not (marked or closed):
            results.append(unmarked)  # not yet assessed: nothing marked (so missing), open
            continue
        # num / den = 10000 * mean = (whole / 63 + 10000 * f_num / f_den) / total; 0 without
        # weight (as `_weighted`)
        if total <= 0:
            num, den = 0, 1
        elif f_num:
            num, den = whole * f_den + _UNIT * f_num, 63 * f_den * total
        else:
            num, den = whole, 63 * total
        q = num // den
        if steps is not None:
            # The result follows from q, marked, missing and closed: built once, then shared.
            seen = 8 * q + marked + missing + shut
            result = shared.get(seen)
            if result is not None:
                results.append(result)
                continue
            # Leaves level/attains at the highest step met, else at the lowest (level_for).
            for bound, level, attains in steps:  # noqa: B007
                if bound <= q:
                    break
        else:
            level = bounds[0][0]
            for level_code, b_num, b_den in bounds:
                if b_num * den * _SCALE <= num * b_den:
                    level = level_code
            attains = level in attaining
        if marked and attains:
            status = ATTAINED
        elif missing and not closed:
            status = NOT_YET_ASSESSED
        else:
            status = NOT_ATTAINED
        percent = shown_get(q)
        if percent is None:
            percent = Decimal(q).scaleb(-4)  # as Exact.display
            if len(_SHOWN) < _SHOWN_MAX and 0 <= q <= 100 * _SCALE:
                _SHOWN[q] = percent
        result = _new_result(FastResult, (code, required, status, percent, level))
        if steps is not None and len(shared) < _SHARED_MAX:
            shared[seen] = result
        results.append(result)
    return tuple(results)


def fast_all_required_attained(results: Sequence[FastResult]) -> bool:
    any_required = False
    for result in results:
        if result[1]:  # required
            if result[2] != ATTAINED:
                return False
            any_required = True
    return any_required
