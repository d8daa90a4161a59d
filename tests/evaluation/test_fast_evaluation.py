"""The fast evaluation (`compile_mapping` + `evaluate_fast`, plain ints) decides exactly what the
general `evaluate_learner` decides, on generated rubrics, weights and marks (issue 19)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

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

decimals = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2,
                       allow_nan=False, allow_infinity=False)


@st.composite
def rubrics(draw) -> Rubric:
    inner = draw(st.lists(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100),
                                      places=3), min_size=1, max_size=4, unique=True))
    bounds = [Decimal(0), *sorted(inner)]
    levels = tuple(PerformanceLevel(f"L{index}", f"Level {index}", bound)
                   for index, bound in enumerate(bounds))
    return Rubric(levels, threshold=draw(st.sampled_from([level.code for level in levels])))


@st.composite
def cases(draw):
    outcomes, sources, marks = [], {}, []
    for n in range(draw(st.integers(1, 4))):
        rubric = draw(rubrics())
        code = f"LO{n}"
        outcomes.append(Outcome(code, rubric, required=draw(st.booleans())))
        specs = []
        for k in range(draw(st.integers(0, 5))):
            kind = draw(st.sampled_from((GRADE_ITEM, LMS_RUBRIC, TOOL_RUBRIC)))
            ref = f"{code}-{k}"
            specs.append(SourceSpec(kind, ref, draw(decimals)))
            choice = draw(st.integers(0, 4))
            if choice == 0:
                continue  # not marked
            if kind == TOOL_RUBRIC:
                marks.append(Mark(kind, ref, level=draw(st.one_of(
                    st.none(), st.just("unknown"), st.sampled_from(
                        [level.code for level in rubric.levels])))))
            else:
                maximum = draw(st.one_of(st.none(), st.decimals(
                    min_value=Decimal(-1), max_value=Decimal(500), places=3)))
                score = draw(st.one_of(st.none(), st.decimals(
                    min_value=Decimal(-5), max_value=Decimal(600), places=4)))
                marks.append(Mark(kind, ref, score=score, maximum=maximum))
        sources[code] = specs
    return outcomes, sources, marks


@settings(max_examples=400, deadline=None)
@given(cases(), st.booleans())
def test_fast_evaluation_decides_what_the_general_one_decides(case, closed) -> None:
    outcomes, sources, marks = case
    general = evaluate_learner(outcomes, sources, marks, closed=closed)
    fast = evaluate_fast(compile_mapping(outcomes, sources), compile_marks(marks), closed=closed)
    assert [(r.code, r.required, r.status, r.percent, r.level) for r in general.results] == \
        [tuple(r) for r in fast]
    assert fast_all_required_attained(fast) == general.all_required_attained


def test_a_bound_is_met_exactly_on_the_fast_path() -> None:
    """7/10 meets 70, and weights 2:1 over 60 and 90 meet 70 too: no float rounding."""
    rubric = Rubric((PerformanceLevel("low", "Low", Decimal(0)),
                     PerformanceLevel("ok", "OK", Decimal(70))), threshold="ok")
    outcomes = [Outcome("LO", rubric)]
    sources = {"LO": [SourceSpec(GRADE_ITEM, "a", Decimal(2)), SourceSpec(GRADE_ITEM, "b")]}
    marks = [Mark(GRADE_ITEM, "a", score=Decimal(6), maximum=Decimal(10)),
             Mark(GRADE_ITEM, "b", score=Decimal(9), maximum=Decimal(10))]
    (result,) = evaluate_fast(compile_mapping(outcomes, sources), compile_marks(marks),
                              closed=False)
    assert (result.status, result.level, result.percent) == ("attained", "ok", Decimal(70))
    marks[1] = Mark(GRADE_ITEM, "b", score=Decimal("8.9999"), maximum=Decimal(10))
    (result,) = evaluate_fast(compile_mapping(outcomes, sources), compile_marks(marks),
                              closed=True)
    assert (result.status, result.level) == ("not_attained", "low")
