"""Pure domain: exact levels, missing marks, the decision state machine, the evidence chain."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lti_tool.domain import decisions as d
from lti_tool.domain.errors import IllegalTransition, ValidationFailed
from lti_tool.domain.evaluation import (
    ATTAINED,
    GRADE_ITEM,
    NOT_ATTAINED,
    NOT_YET_ASSESSED,
    TOOL_RUBRIC,
    Mark,
    Outcome,
    SourceSpec,
    evaluate_learner,
    evaluate_outcome,
    validate_mapping,
)
from lti_tool.domain.evidence import canonical_json
from lti_tool.domain.rubric import PerformanceLevel, Rubric

RUBRIC = Rubric(
    levels=(
        PerformanceLevel("beginning", "Beginning", Decimal(0)),
        PerformanceLevel("developing", "Developing", Decimal(50)),
        PerformanceLevel("proficient", "Proficient", Decimal(70)),
        PerformanceLevel("exemplary", "Exemplary", Decimal("85.5")),
    ),
    threshold="proficient",
)
LO = Outcome("LO1", RUBRIC)


def grade(ref: str, score: str, maximum: str = "100") -> Mark:
    return Mark(GRADE_ITEM, ref, score=Decimal(score), maximum=Decimal(maximum))


def items(*weights: str) -> list[SourceSpec]:
    return [SourceSpec(GRADE_ITEM, f"i{n}", Decimal(w)) for n, w in enumerate(weights)]


def run(specs: list[SourceSpec], marks: list[Mark], closed: bool = False):
    return evaluate_outcome(LO, specs, {m.key: m for m in marks}, closed=closed)


# --- boundaries -------------------------------------------------------------------------------

@pytest.mark.parametrize(("marks", "weights", "level", "status"), [
    ([("7", "10")], ("1",), "proficient", ATTAINED),          # 70 exactly meets bound 70
    ([("69.999", "100")], ("1",), "developing", NOT_ATTAINED),
    ([("60", "100"), ("90", "100")], ("2", "1"), "proficient", ATTAINED),  # (120+90)/3 = 70
    ([("60", "100"), ("90", "100")], ("1", "2"), "proficient", ATTAINED),  # (60+180)/3 = 80
    ([("2", "3"), ("22", "30")], ("1", "1"), "proficient", ATTAINED),      # (66.67+73.33)/2 = 70
    ([("171", "200")], ("1",), "exemplary", ATTAINED),        # 85.5 exactly
    ([("170.999", "200")], ("1",), "proficient", ATTAINED),
    ([("0", "100")], ("1",), "beginning", NOT_ATTAINED),
    ([("150", "100")], ("1",), "exemplary", ATTAINED),        # extra credit clamps at 100
], ids=["70-exact", "just-below", "2:1-70", "1:2-80", "thirds-70", "85.5-exact",
        "just-below-85.5", "zero", "over-max"])
def test_boundary_percents_land_in_the_right_level(marks, weights, level, status) -> None:
    result = run(items(*weights), [grade(f"i{n}", s, m) for n, (s, m) in enumerate(marks)])
    assert (result.level, result.status) == (level, status)


def test_two_to_one_weights_reach_seventy_exactly() -> None:
    # (2 * 60 + 1 * 90) / 3 = 70 exactly: float arithmetic would risk 69.999...
    result = run(items("2", "1"), [grade("i0", "60"), grade("i1", "90")])
    assert result.level == "proficient" and result.percent == Decimal("70.0000")
    thirds = run(items("0.3333", "0.6667"), [grade("i0", "100"), grade("i1", "55")])
    assert thirds.percent is not None and thirds.level == "developing"  # 69.9985 < 70


@given(numerator=st.integers(0, 300), denominator=st.integers(1, 300))
def test_level_is_the_highest_whose_bound_is_met(numerator: int, denominator: int) -> None:
    result = run(items("1"), [grade("i0", str(numerator), str(denominator))])
    met = [lvl for lvl in RUBRIC.levels if lvl.lower_bound * denominator <= numerator * 100]
    assert result.level == met[-1].code


def test_tool_rubric_level_is_used_as_is() -> None:
    spec = [SourceSpec(TOOL_RUBRIC, "LO1")]
    for level in RUBRIC.levels:
        result = run(spec, [Mark(TOOL_RUBRIC, "LO1", level=level.code)])
        assert result.level == level.code


# --- missing marks ----------------------------------------------------------------------------

def test_missing_marks_are_not_yet_assessed_before_close_and_not_attained_at_close() -> None:
    specs = items("1", "1")
    assert run(specs, []).status == NOT_YET_ASSESSED
    assert run(specs, []).level is None
    assert run(specs, [grade("i0", "100")]).status == NOT_YET_ASSESSED  # 50 so far
    closed = run(specs, [grade("i0", "100")], closed=True)
    assert (closed.status, closed.level) == (NOT_ATTAINED, "developing")
    assert run(specs, [], closed=True).status == NOT_ATTAINED


def test_an_lo_already_certain_is_attained_before_every_mark_is_in() -> None:
    # 3 * 100 / 4 = 75 even if the missing item scores 0: attained, and no later mark undoes it.
    assert run(items("3", "1"), [grade("i0", "100")]).status == ATTAINED


def test_unmapped_lo_is_pending_then_not_attained() -> None:
    assert run([], []).status == NOT_YET_ASSESSED
    assert run([], [], closed=True).status == NOT_ATTAINED


# --- properties -------------------------------------------------------------------------------

scores = st.integers(min_value=0, max_value=100)
weights = st.integers(min_value=1, max_value=9)


@given(st.lists(st.tuples(weights, st.one_of(st.none(), scores)), min_size=1, max_size=6),
       st.data(), st.booleans())
def test_raising_a_mark_never_unattains(parts, data, closed: bool) -> None:
    specs = items(*(str(w) for w, _ in parts))
    marks = [grade(f"i{n}", str(s)) for n, (_, s) in enumerate(parts) if s is not None]
    before = run(specs, marks, closed)
    index = data.draw(st.integers(0, len(parts) - 1))
    old = parts[index][1]
    new = data.draw(st.integers(min_value=old if old is not None else 0, max_value=100))
    raised = [m for m in marks if m.ref != f"i{index}"] + [grade(f"i{index}", str(new))]
    after = run(specs, raised, closed)
    if before.status == ATTAINED:
        assert after.status == ATTAINED
    if before.level is not None and after.level is not None:
        assert RUBRIC.rank(after.level) >= RUBRIC.rank(before.level)


outcomes = [Outcome(f"LO{n}", RUBRIC, required=n != 3) for n in range(1, 5)]
mapping = {f"LO{n}": [
    SourceSpec(GRADE_ITEM, f"g{n}a", Decimal(1)), SourceSpec(GRADE_ITEM, f"g{n}b", Decimal(2))]
    for n in range(1, 5)}


@given(st.permutations([grade(f"g{n}{x}", str(s)) for n, x, s in [
    (1, "a", 70), (1, "b", 71), (2, "a", 40), (2, "b", 95), (3, "a", 0), (3, "b", 10),
    (4, "a", 100), (4, "b", 69)]]), st.integers(0, 8))
def test_decision_does_not_depend_on_arrival_order(marks, cut: int) -> None:
    """Feed marks one by one; the first pass and the final levels are the same in any order."""
    final = evaluate_learner(outcomes, mapping, marks, closed=False)
    reference = evaluate_learner(outcomes, mapping, sorted(marks, key=lambda m: m.ref),
                                 closed=False)
    assert final.outcome_levels() == reference.outcome_levels()
    assert final.all_required_attained == reference.all_required_attained is True
    # A prefix never passes unless the full set passes too (monotone).
    partial = evaluate_learner(outcomes, mapping, marks[:cut], closed=False)
    if partial.all_required_attained:
        assert final.all_required_attained


def test_carried_outcomes_keep_their_result_and_only_the_rest_is_reassessed() -> None:
    first = evaluate_learner(outcomes, mapping, [grade("g1a", "100"), grade("g1b", "100")],
                             closed=True)
    assert first.by_code["LO1"].attained and not first.by_code["LO2"].attained
    second = evaluate_learner(outcomes, mapping, [grade("g2a", "90"), grade("g2b", "90")],
                              closed=False, carried=first.by_code)
    assert second.by_code["LO1"].carried_over and second.by_code["LO1"].attained
    assert second.by_code["LO2"].attained and not second.by_code["LO2"].carried_over
    assert second.share_attained == pytest.approx(2 / 3)


def test_mapping_validation_lists_every_problem() -> None:
    bad = {"LO1": [SourceSpec(GRADE_ITEM, "x", Decimal(0)), SourceSpec("oops", "y"),
                   SourceSpec(GRADE_ITEM, "x", Decimal(1))],
           "NOPE": [SourceSpec(GRADE_ITEM, "z")]}
    with pytest.raises(ValidationFailed) as caught:
        validate_mapping([LO], bad, {GRADE_ITEM: {"y", "z"}})
    paths = [p.path for p in caught.value.problems]
    assert "outcomes.NOPE" in paths
    assert "outcomes.LO1.sources[0].weight" in paths
    assert "outcomes.LO1.sources[0].ref" in paths
    assert "outcomes.LO1.sources[1].kind" in paths
    assert "outcomes.LO1.sources[2]" in paths


# --- state machine ----------------------------------------------------------------------------

def walk(*events: str) -> d.DecisionState:
    state = d.DecisionState()
    for event in events:
        state = d.transition(state, event)
    return state


@pytest.mark.parametrize(("events", "status"), [
    ((d.ATTAIN_ALL,), d.PASSED),
    ((d.CLOSE,), d.FAILED),
    ((d.CLOSE, d.GRANT_REEVALUATION), d.REEVALUATION_GRANTED),
    ((d.CLOSE, d.GRANT_REEVALUATION, d.ATTAIN_ALL), d.PASSED),
    ((d.CLOSE, d.GRANT_REEVALUATION, d.CLOSE), d.FAILED_FINAL),
    ((d.RECOGNISE_PRIOR_LEARNING,), d.PASSED),
    ((d.CLOSE, d.RECOGNISE_PRIOR_LEARNING), d.PASSED),
    ((d.CLOSE, d.GRANT_REEVALUATION, d.RECOGNISE_PRIOR_LEARNING), d.PASSED),
])
def test_every_legal_path(events, status) -> None:
    assert walk(*events).status == status


@pytest.mark.parametrize(("events", "illegal", "says"), [
    ((d.ATTAIN_ALL,), d.CLOSE, "already passed"),
    ((), d.GRANT_REEVALUATION, "still open"),
    ((d.CLOSE, d.GRANT_REEVALUATION, d.CLOSE), d.GRANT_REEVALUATION, "one re-evaluation"),
    ((d.CLOSE, d.GRANT_REEVALUATION), d.GRANT_REEVALUATION, "one re-evaluation"),
    ((d.CLOSE, d.GRANT_REEVALUATION, d.CLOSE), d.RECOGNISE_PRIOR_LEARNING, "final"),
    ((d.CLOSE,), d.ATTAIN_ALL, "not been granted"),
])
def test_illegal_transitions_say_why(events, illegal, says) -> None:
    with pytest.raises(IllegalTransition, match=says):
        d.transition(walk(*events), illegal)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(d.EVENTS), max_size=12))
def test_a_learner_never_gets_two_reevaluations(events) -> None:
    state = d.DecisionState()
    grants = 0
    for event in events:
        if d.can(state, event):
            state = d.transition(state, event)
            grants += event == d.GRANT_REEVALUATION
    assert grants <= 1
    assert state.reevaluations_used == grants
    # Even a state forged back to `failed` refuses a second grant.
    if grants:
        with pytest.raises(IllegalTransition, match="one re-evaluation"):
            d.transition(replace(state, status=d.FAILED), d.GRANT_REEVALUATION)


# --- evidence canonical form (the chain: tests/evidence) -------------------------------------

def test_canonical_json_is_stable_and_exact() -> None:
    a = canonical_json({"b": Decimal("70.0000"), "a": [1, "ş"]})
    assert a == '{"a":[1,"ş"],"b":"70.0000"}'
    assert canonical_json({"a": [1, "ş"], "b": Decimal("70.0000")}) == a


def decide_as_marks_arrive(marks: list[Mark]) -> tuple[str, dict[str, str]]:
    """Evaluate after each arriving mark, as the service does, then close the window."""
    state, seen = d.DecisionState(), []
    for mark in marks:
        seen.append(mark)
        if state.status == d.IN_PROGRESS and evaluate_learner(
                outcomes, mapping, seen, closed=False).all_required_attained:
            state = d.transition(state, d.ATTAIN_ALL)
    final = evaluate_learner(outcomes, mapping, seen, closed=True)
    if state.status == d.IN_PROGRESS:
        state = d.transition(state, d.ATTAIN_ALL if final.all_required_attained else d.CLOSE)
    return state.status, final.outcome_levels()


arriving = st.lists(st.tuples(st.sampled_from([f"g{n}{x}" for n in range(1, 5) for x in "ab"]),
                              st.integers(0, 100)), unique_by=lambda t: t[0], max_size=8)


@given(arriving, st.randoms(use_true_random=False))
def test_final_decision_is_the_same_in_any_arrival_order(pairs, rng) -> None:
    marks = [grade(ref, str(score)) for ref, score in pairs]
    shuffled = list(marks)
    rng.shuffle(shuffled)
    assert decide_as_marks_arrive(marks) == decide_as_marks_arrive(shuffled)
