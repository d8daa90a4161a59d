"""The fast evaluation (`compile_mapping` + `compile_marks` + `evaluate_fast`, plain ints)
decides exactly what the general `evaluate_learner` decides, on generated rubrics, weights and
marks (issue 19): the same status, level and shown percent (to the digit, as the evidence stores
its text) for every LO, and the same "all required attained".

The generators aim at the edges of the integer arithmetic: bounds exact in 1/10000 (compared as
integers) and finer ones (cross-multiplied), unvalidated rubrics (unordered or repeated levels),
percents summed as whole numbers of 1/630000 (17 of 20, 1 of 3) and not (1 of 17, 4-place
scores over 3-place maxima), marks exactly on a bound and a hair either side of it, zero and
negative maxima, huge and tiny values, one value in several spellings (the percents are cached
by text), missing, unusable, duplicated and unmapped marks, and many learners on one compiled
mapping (which shares the results it built)."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lti_tool.domain import evaluation
from lti_tool.domain.evaluation import (
    GRADE_ITEM,
    LMS_RUBRIC,
    TOOL_RUBRIC,
    Mark,
    Outcome,
    SourceSpec,
    compile_mapping,
    compile_marks,
    evaluate_fast,
    evaluate_learner,
    fast_all_required_attained,
)
from lti_tool.domain.rubric import PerformanceLevel, Rubric

weights = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2,
                      allow_nan=False, allow_infinity=False)
odd_weights = st.one_of(
    weights,
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(1), places=6),
    st.sampled_from([Decimal("1E+6"), Decimal("123456789.123"), Decimal("1E-9"),
                     Decimal("3.000"), Decimal("1E+2")]))
# Not allowed by `validate_mapping`, but evaluate_learner does not check: neither may differ.
unchecked_weights = st.one_of(odd_weights, st.sampled_from([Decimal(0), Decimal(-1),
                                                            Decimal("-0.5"), Decimal(-2)]))
points = st.decimals(min_value=Decimal(-5), max_value=Decimal(600), places=4)
odd_points = st.sampled_from([Decimal(0), Decimal("-0"), Decimal(-1), Decimal("1E+30"),
                              Decimal("1E-30"), Decimal("3"), Decimal("7"), Decimal("0.0003"),
                              Decimal("99999999999999999999999999999999.5"), Decimal("2E+1")])


def spellings(value: Decimal) -> st.SearchStrategy[Decimal]:
    """One value, several texts: 17, 17.000, 1.7E+1 (the percent cache is keyed by text)."""
    return st.sampled_from([value, value.normalize(), value + Decimal("0.000"),
                            value.scaleb(-2).scaleb(2)])


@st.composite
def rubrics(draw, *, loose: bool = False) -> Rubric:
    """Valid rubrics with bounds of 0 to 6 places; `loose`: what validation would refuse
    (unordered, repeated codes, first bound not 0)."""
    places = draw(st.sampled_from([0, 2, 4, 5, 6]))
    inner = draw(st.lists(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(100),
                                      places=places), min_size=1, max_size=4, unique=True))
    if loose:
        bounds = draw(st.permutations([draw(st.sampled_from([Decimal(0), Decimal(5)])),
                                       *inner]))
        codes = [draw(st.sampled_from(["A", "B", "C", f"L{index}"]))
                 for index in range(len(bounds))]
    else:
        bounds = [Decimal(0), *sorted(inner)]
        codes = [f"L{index}" for index in range(len(bounds))]
    levels = tuple(PerformanceLevel(code, code, bound) for code, bound in zip(codes, bounds,
                                                                              strict=True))
    return Rubric(levels, threshold=draw(st.sampled_from(codes)))


def on_bound(bound: Fraction, offset: Fraction) -> tuple[Decimal, Decimal]:
    """(score, maximum) whose percent is exactly bound + offset (clamped to 0..100)."""
    percent = min(max(bound + offset, Fraction(0)), Fraction(100))
    return Decimal(percent.numerator), Decimal(100 * percent.denominator)


@st.composite
def points_mark(draw, kind: str, ref: str, rubric: Rubric) -> Mark:
    choice = draw(st.integers(0, 5))
    if choice == 0:  # exactly on a bound, or a hair from it
        bound = Fraction(draw(st.sampled_from(rubric.levels)).lower_bound)
        offset = draw(st.sampled_from([Fraction(0), Fraction(1, 10**9), Fraction(-1, 10**9),
                                       Fraction(1, 10000), Fraction(-1, 10000),
                                       Fraction(-1, 3)]))
        score, maximum = on_bound(bound, offset)
    elif choice == 1:
        score, maximum = draw(odd_points), draw(st.one_of(odd_points, points))
    else:
        score = draw(st.one_of(st.none(), points))
        maximum = draw(st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal(-3)]),
                                 st.decimals(min_value=Decimal(-1), max_value=Decimal(500),
                                             places=3)))
    if score is not None:
        score = draw(spellings(score))
    if maximum is not None:
        maximum = draw(spellings(maximum))
    level = draw(st.one_of(st.none(), st.just("L1")))  # ignored on a points mark
    return Mark(kind, ref, score=score, maximum=maximum, level=level)


@st.composite
def cases(draw, *, loose: bool = False, weight: st.SearchStrategy[Decimal] = odd_weights):
    outcomes, sources, marks = [], {}, []
    for n in range(draw(st.integers(1, 4))):
        rubric = draw(rubrics(loose=loose))
        code = f"LO{n}"
        outcomes.append(Outcome(code, rubric, required=draw(st.booleans())))
        specs = []
        for k in range(draw(st.integers(0, 5))):
            kind = draw(st.sampled_from((GRADE_ITEM, LMS_RUBRIC, TOOL_RUBRIC)))
            ref = f"{code}-{k}"
            specs.append(SourceSpec(kind, ref, draw(weight)))
            for _copy in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):  # 2: last one counts
                if kind == TOOL_RUBRIC:
                    marks.append(draw(st.one_of(
                        st.builds(Mark, st.just(kind), st.just(ref), level=st.one_of(
                            st.none(), st.just("unknown"),
                            st.sampled_from([level.code for level in rubric.levels]))),
                        st.builds(Mark, st.just(kind), st.just(ref), score=points,
                                  maximum=points))))  # a tool mark carries no points
                else:
                    marks.append(draw(points_mark(kind, ref, rubric)))
        sources[code] = specs
    if draw(st.booleans()):  # marks no LO maps
        marks.append(Mark(GRADE_ITEM, "unmapped", score=Decimal(1), maximum=Decimal(2)))
        marks.append(Mark(TOOL_RUBRIC, "LO0-0-x", level="L0"))
    return outcomes, sources, draw(st.permutations(marks))


def assert_same(outcomes, sources, marks, closed: bool) -> None:
    general = evaluate_learner(outcomes, sources, marks, closed=closed)
    fast = evaluate_fast(compile_mapping(outcomes, sources), compile_marks(marks), closed=closed)
    assert [(r.code, r.required, r.status, str(r.percent), r.level) for r in general.results] \
        == [(r.code, r.required, r.status, str(r.percent), r.level) for r in fast]
    assert all(type(r) is evaluation.FastResult for r in fast)
    assert fast_all_required_attained(fast) == general.all_required_attained


@settings(max_examples=400, deadline=None)
@given(cases(weight=weights), st.booleans())
def test_fast_evaluation_decides_what_the_general_one_decides(case, closed) -> None:
    assert_same(*case, closed)


@settings(max_examples=400, deadline=None)
@given(cases(), st.booleans())
def test_the_same_on_edge_weights_bounds_and_marks(case, closed) -> None:
    assert_same(*case, closed)


@settings(max_examples=200, deadline=None)
@given(cases(loose=True, weight=unchecked_weights), st.booleans())
def test_the_same_on_what_validation_would_refuse(case, closed) -> None:
    """Unordered rubrics, repeated level codes, zero and negative weights."""
    assert_same(*case, closed)


@st.composite
def cohorts(draw):
    """One mapping and many learners' marks (drawn for the mapping's own refs and rubrics)."""
    outcomes, sources, first = draw(cases())
    learners = [first]
    for _ in range(draw(st.integers(1, 12))):
        marks = []
        for outcome in outcomes:
            for spec in sources[outcome.code]:
                if draw(st.integers(0, 4)) == 0:
                    continue
                if spec.kind == TOOL_RUBRIC:
                    marks.append(Mark(spec.kind, spec.ref, level=draw(st.sampled_from(
                        [None, *(level.code for level in outcome.rubric.levels)]))))
                else:
                    marks.append(draw(points_mark(spec.kind, spec.ref, outcome.rubric)))
        learners.append(marks)
    return outcomes, sources, [(marks, draw(st.booleans())) for marks in learners * 2]


@settings(max_examples=200, deadline=None)
@given(cohorts())
def test_one_compiled_mapping_for_many_learners(cohort) -> None:
    """A compiled mapping keeps the results it built and shares them between learners with
    the same result: each learner still gets exactly what the general evaluation gives, open
    or closed, in any order."""
    outcomes, sources, learners = cohort
    compiled = compile_mapping(outcomes, sources)
    for marks, closed in learners:
        general = evaluate_learner(outcomes, sources, marks, closed=closed)
        fast = evaluate_fast(compiled, compile_marks(marks), closed=closed)
        assert [(r.code, r.required, r.status, str(r.percent), r.level)
                for r in general.results] == \
            [(r.code, r.required, r.status, str(r.percent), r.level) for r in fast]
        assert fast_all_required_attained(fast) == general.all_required_attained


@settings(max_examples=100, deadline=None)
@given(cases(), st.booleans())
def test_the_same_with_the_caches_full(case, closed) -> None:
    """Past their bounds the caches of mark percents, shown percents and built results keep
    nothing more, and nothing changes."""
    saved = (evaluation._RATIOS_MAX, evaluation._SHOWN_MAX, dict(evaluation._RATIOS),
             dict(evaluation._SHOWN), evaluation._SHARED_MAX)
    try:
        evaluation._RATIOS_MAX = evaluation._SHOWN_MAX = evaluation._SHARED_MAX = 0
        evaluation._RATIOS.clear()
        evaluation._SHOWN.clear()
        assert_same(*case, closed)
        assert not evaluation._RATIOS and not evaluation._SHOWN
    finally:
        evaluation._RATIOS_MAX, evaluation._SHOWN_MAX = saved[:2]
        evaluation._SHARED_MAX = saved[4]
        evaluation._RATIOS.update(saved[2])
        evaluation._SHOWN.update(saved[3])


RUBRIC = Rubric((PerformanceLevel("low", "Low", Decimal(0)),
                 PerformanceLevel("ok", "OK", Decimal(70)),
                 PerformanceLevel("top", "Top", Decimal("85.5"))), threshold="ok")


def fast_one(sources, marks, *, closed: bool = False, rubric: Rubric = RUBRIC):
    (result,) = evaluate_fast(compile_mapping([Outcome("LO", rubric)], {"LO": sources}),
                              compile_marks(marks), closed=closed)
    return result


def test_a_bound_is_met_exactly_on_the_fast_path() -> None:
    """7/10 meets 70, and weights 2:1 over 60 and 90 meet 70 too: no float rounding."""
    sources = [SourceSpec(GRADE_ITEM, "a", Decimal(2)), SourceSpec(GRADE_ITEM, "b")]
    marks = [Mark(GRADE_ITEM, "a", score=Decimal(6), maximum=Decimal(10)),
             Mark(GRADE_ITEM, "b", score=Decimal(9), maximum=Decimal(10))]
    result = fast_one(sources, marks)
    assert (result.status, result.level, result.percent) == ("attained", "ok", Decimal(70))
    marks[1] = Mark(GRADE_ITEM, "b", score=Decimal("8.9999"), maximum=Decimal(10))
    result = fast_one(sources, marks, closed=True)
    assert (result.status, result.level, str(result.percent)) == ("not_attained", "low",
                                                                  "69.9996")  # floored


@pytest.mark.parametrize(("scores", "level", "shown"), [
    # thirds: 1 of 3 points is 33.333..., never exact in 1/10000 (but in 1/630000); 1 of 17 in
    # neither
    ((("21", "30"), ("21", "30")), "ok", "70.0000"),
    ((("12", "17"), ("11.9", "17")), "ok", "70.2941"),
    ((("11.9", "17"), ("11.9", "17")), "ok", "70.0000"),
    ((("11.89999", "17"), ("11.9", "17")), "low", "69.9999"),
    ((("20.99999", "30"), ("21", "30")), "low", "69.9999"),
    ((("1", "3"), ("256.5", "300")), "low", "59.4166"),  # (33.33... + 85.5) / 2
    ((("171", "200"), ("171", "200")), "top", "85.5000"),
    ((("17099999999", "20000000000"), ("171", "200")), "ok", "85.4999"),
])
def test_percents_not_exact_in_ten_thousandths_or_in_630000ths(scores, level, shown) -> None:
    sources = [SourceSpec(GRADE_ITEM, "a"), SourceSpec(GRADE_ITEM, "b")]
    marks = [Mark(GRADE_ITEM, ref, score=Decimal(s), maximum=Decimal(m))
             for ref, (s, m) in zip("ab", scores, strict=True)]
    result = fast_one(sources, marks)
    assert (result.level, str(result.percent)) == (level, shown)
    general = evaluate_learner([Outcome("LO", RUBRIC)], {"LO": sources}, marks, closed=False)
    assert (general.results[0].level, str(general.results[0].percent)) == (level, shown)


def test_a_bound_finer_than_the_shown_percent_is_compared_exactly() -> None:
    """A bound of 70.00005 is not met by 70.00004 even though both show as 70.0000."""
    rubric = Rubric((PerformanceLevel("low", "Low", Decimal(0)),
                     PerformanceLevel("ok", "OK", Decimal("70.00005"))), threshold="ok")
    sources = [SourceSpec(GRADE_ITEM, "a")]
    below = [Mark(GRADE_ITEM, "a", score=Decimal("70.00004"), maximum=Decimal(100))]
    at = [Mark(GRADE_ITEM, "a", score=Decimal("70.00005"), maximum=Decimal(100))]
    assert (fast_one(sources, below, rubric=rubric).level,
            str(fast_one(sources, below, rubric=rubric).percent)) == ("low", "70.0000")
    assert fast_one(sources, at, rubric=rubric).status == "attained"


def test_one_value_in_other_spellings_gives_one_percent() -> None:
    sources = [SourceSpec(GRADE_ITEM, "a")]
    shown = {str(fast_one(sources, [Mark(GRADE_ITEM, "a", score=Decimal(s),
                                         maximum=Decimal(m))]).percent)
             for s, m in [("17", "20"), ("17.000", "20.0"), ("1.7E+1", "2E+1"), ("34", "40")]}
    assert shown == {"85.0000"}


def test_zero_and_missing_maxima_and_huge_values() -> None:
    sources = [SourceSpec(GRADE_ITEM, "a"), SourceSpec(GRADE_ITEM, "b")]
    for maximum in (Decimal(0), Decimal(-5), None):
        marks = [Mark(GRADE_ITEM, "a", score=Decimal(5), maximum=maximum),
                 Mark(GRADE_ITEM, "b", score=Decimal(10), maximum=Decimal(10))]
        open_, closed = fast_one(sources, marks), fast_one(sources, marks, closed=True)
        assert (open_.status, str(open_.percent)) == ("not_yet_assessed", "50.0000")
        assert (closed.status, closed.level) == ("not_attained", "low")
    with localcontext() as context:
        context.prec = 60
        huge = Decimal(10) ** 40
        marks = [Mark(GRADE_ITEM, "a", score=huge * 7 / 10, maximum=huge),
                 Mark(GRADE_ITEM, "b", score=Decimal("1E-40") * 7, maximum=Decimal("1E-39"))]
    result = fast_one(sources, marks)
    assert (result.status, str(result.percent)) == ("attained", "70.0000")
