"""Domain rules of the catalogue: Design Plan validation, rubrics, workflow, pathways."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lti_tool.domain import catalogue as rules
from lti_tool.domain.catalogue import DesignPlan, OfferingSettings
from lti_tool.domain.errors import IllegalTransition, ValidationFailed
from lti_tool.domain.rubric import PerformanceLevel
from tests.catalogue.strategies import plans, relaxed, rubrics


def paths(plan: DesignPlan) -> set[str]:
    return {p.path for p in plan.problems()}


@relaxed
@given(plans())
def test_generated_plans_are_valid(plan: DesignPlan) -> None:
    assert plan.validate() is plan


@relaxed
@given(plans(), st.data())
def test_non_increasing_bounds_are_rejected_naming_the_field(plan: DesignPlan, data) -> None:
    index = data.draw(st.integers(0, len(plan.outcomes) - 1))
    rubric = plan.outcomes[index].rubric
    at = data.draw(st.integers(1, len(rubric.levels) - 1))
    levels = list(rubric.levels)
    # Any bound at or below its predecessor's breaks the strict increase.
    lower = data.draw(st.integers(0, int(levels[at - 1].lower_bound * 100)))
    levels[at] = dataclasses.replace(levels[at], lower_bound=Decimal(lower) / 100)
    outcomes = list(plan.outcomes)
    outcomes[index] = dataclasses.replace(
        outcomes[index], rubric=dataclasses.replace(rubric, levels=tuple(levels)))
    broken = dataclasses.replace(plan, outcomes=tuple(outcomes))
    assert f"outcomes[{index}].rubric.levels[{at}].lower_bound" in paths(broken)
    with pytest.raises(ValidationFailed):
        broken.validate()


@relaxed
@given(rubrics(), st.text(min_size=1, max_size=5))
def test_a_threshold_that_is_not_a_level_is_named(rubric, threshold: str) -> None:
    if threshold in {level.code for level in rubric.levels}:
        return
    broken = dataclasses.replace(rubric, threshold=threshold)
    assert "threshold" in {p.path for p in broken.problems()}


@relaxed
@given(plans())
def test_every_problem_is_reported_at_once(plan: DesignPlan) -> None:
    """Three independent faults give three problems, not the first one only."""
    first = plan.outcomes[0]
    bad_rubric = dataclasses.replace(first.rubric, threshold="no-such-level")
    broken = dataclasses.replace(
        plan, title=" ", tqf_level=9,
        outcomes=(dataclasses.replace(first, rubric=bad_rubric),) + plan.outcomes[1:])
    assert {"title", "tqf_level", "outcomes[0].rubric.threshold"} <= paths(broken)


@relaxed
@given(plans())
def test_a_stand_alone_course_is_at_most_30_hours(plan: DesignPlan) -> None:
    """Art. 4/1-f: a micro-credential course is at most 30 hours."""
    course = dataclasses.replace(plan, kind="course", workload_hours=Decimal("30.01"))
    assert "workload_hours" in paths(course)
    assert "workload_hours" not in paths(dataclasses.replace(course, kind="embedded"))
    assert "workload_hours" not in paths(dataclasses.replace(course, workload_hours=Decimal(30)))


@pytest.mark.parametrize(("ects", "hours", "warned"), [
    (Decimal(1), Decimal(25), False), (Decimal(1), Decimal(30), False),
    (Decimal(1), Decimal("24.5"), True), (Decimal(1), Decimal(31), True),
    (Decimal(2), Decimal(50), False), (Decimal("1.5"), Decimal(30), True),
    (None, Decimal(10), False),
])
def test_ects_and_workload_disagreeing_is_a_warning_not_an_error(ects, hours, warned) -> None:
    plan = _example(ects=ects, workload_hours=hours, kind="embedded")
    assert plan.problems() == []
    assert ("ects" in {w.path for w in plan.warnings()}) is warned


def test_duplicate_outcome_codes_and_missing_fields() -> None:
    plan = _example()
    twice = dataclasses.replace(plan, outcomes=plan.outcomes + (plan.outcomes[0],))
    assert f"outcomes[{len(plan.outcomes)}].code" in paths(twice)
    nothing = dataclasses.replace(plan, outcomes=(), teaching_methods=())
    assert {"outcomes", "teaching_methods"} <= paths(nothing)
    optional_only = dataclasses.replace(
        plan, outcomes=(dataclasses.replace(plan.outcomes[0], required=False),))
    assert "outcomes" in paths(optional_only)


def test_badge_metadata_field_of_study_and_participation_form_are_required() -> None:
    """Art. 11/2 and Art. 6/2-e: every badge states its field of study and form of participation."""
    plan = _example()
    assert (plan.field_of_study, plan.participation_form) == (
        "Statistics and data analysis for engineering", "blended")
    missing = dataclasses.replace(plan, field_of_study="  ", participation_form="")
    assert {"field_of_study", "participation_form"} <= paths(missing)
    wrong = dataclasses.replace(plan, participation_form="face-to-face", isced_f_code="613",
                                field_of_study="x" * 256)
    found = {p.path: p.message for p in wrong.problems()}
    assert "online, in_person, blended" in found["participation_form"]
    assert "ISCED-F" in found["isced_f_code"]
    assert found["field_of_study"] == "at most 255 characters"
    for code in ("", "06", "061", "0613", "10", "99", "1011"):
        assert "isced_f_code" not in paths(dataclasses.replace(plan, isced_f_code=code)), code
    for code in ("6", "11", "00000", "06a", "0613 ", "0613\n"):
        assert "isced_f_code" in paths(dataclasses.replace(plan, isced_f_code=code)), code


def test_an_outcome_needs_a_known_domain_and_labelled_levels() -> None:
    plan = _example()
    outcome = plan.outcomes[0]
    levels = (dataclasses.replace(outcome.rubric.levels[0], label=""),) + outcome.rubric.levels[1:]
    broken = dataclasses.replace(outcome, domain="attitude",
                                 rubric=dataclasses.replace(outcome.rubric, levels=levels))
    found = paths(dataclasses.replace(plan, outcomes=(broken,)))
    assert {"outcomes[0].domain", "outcomes[0].rubric.levels[0].label"} <= found


def test_a_rubric_needs_two_levels_from_zero() -> None:
    plan = _example()
    one = (PerformanceLevel("only", "Only", Decimal(10)),)
    outcome = dataclasses.replace(plan.outcomes[0], rubric=dataclasses.replace(
        plan.outcomes[0].rubric, levels=one, threshold="only"))
    found = paths(dataclasses.replace(plan, outcomes=(outcome,)))
    assert {"outcomes[0].rubric.levels", "outcomes[0].rubric.levels[0].lower_bound"} <= found


# --- workflow -------------------------------------------------------------------------------

LEGAL = {
    ("draft", "submit"): "in_review",
    ("in_review", "reject"): "draft",
    ("in_review", "approve"): "approved",
    ("approved", "lapse"): "lapsed",
    ("approved", "revalidate"): "approved",
    ("lapsed", "revalidate"): "approved",
    ("approved", "retire"): "retired",
    ("lapsed", "retire"): "retired",
}


@pytest.mark.parametrize("status", rules.STATUSES)
@pytest.mark.parametrize("action", sorted(rules.TRANSITIONS))
def test_every_transition_is_legal_or_refused(status: str, action: str) -> None:
    if (status, action) in LEGAL:
        assert rules.next_status(status, action) == LEGAL[status, action]
    else:
        with pytest.raises(IllegalTransition, match=f"cannot {action}"):
            rules.next_status(status, action)


def test_retired_is_final_and_people_cannot_lapse() -> None:
    assert rules.available_actions("retired") == []
    assert "lapse" not in rules.available_actions("approved")
    with pytest.raises(IllegalTransition):
        rules.next_status("draft", "publish")


@pytest.mark.parametrize(("approved", "due"), [
    (datetime(2026, 3, 1, 9, tzinfo=UTC), datetime(2029, 3, 1, 9, tzinfo=UTC)),
    (datetime(2028, 2, 29, 9, tzinfo=UTC), datetime(2031, 2, 28, 9, tzinfo=UTC)),
])
def test_revalidation_is_due_three_years_after_approval(approved, due) -> None:
    """Art. 4/1-ş: revalidation at least once every three years."""
    assert rules.revalidation_due(approved) == due
    earlier = datetime(2027, 1, 1, tzinfo=UTC) if approved.year < 2027 else None
    if earlier:
        assert rules.revalidation_due(approved, earlier) == earlier
    with pytest.raises(ValidationFailed, match="revalidation_due"):
        rules.revalidation_due(approved, due + timedelta(days=1))
    with pytest.raises(ValidationFailed):
        rules.revalidation_due(approved, approved)


# --- pathways -------------------------------------------------------------------------------


def test_a_cycle_is_rejected_and_named() -> None:
    others = {"DLE-101": ("PY-201",), "PY-201": ("ML-301",), "ML-301": ()}
    found = rules.pathway_problems("ML-301", ("DLE-101",), others)
    assert [p.path for p in found] == ["requires"]
    assert "ML-301 -> DLE-101 -> PY-201 -> ML-301" in found[0].message


def test_unknown_components_and_self_reference() -> None:
    found = rules.pathway_problems("PATH", ("NOPE",), {"A": ()})
    assert [(p.path, "NOPE" in p.message) for p in found] == [("requires[0]", True)]
    plan = dataclasses.replace(_example(), requires=("DLE-101", "X", "X"))
    assert {"requires[0]", "requires[2]"} <= paths(plan)


@relaxed
@given(st.dictionaries(st.sampled_from("ABCDEF"), st.sets(st.sampled_from("ABCDEF"))))
def test_find_cycle_returns_a_real_closed_walk_or_the_graph_is_acyclic(graph) -> None:
    cycle = rules.find_cycle(graph)
    if cycle is None:
        order: list[str] = []  # a topological order exists
        remaining = {k: set(v) for k, v in graph.items()}
        while remaining:
            ready = [k for k, v in remaining.items() if not (v & set(remaining))]
            assert ready, "acyclic graph must have a node without pending requirements"
            for k in ready:
                order.append(k)
                del remaining[k]
    else:
        assert cycle[0] == cycle[-1]
        assert all(b in graph.get(a, ()) for a, b in zip(cycle, cycle[1:], strict=False))


def test_a_pathway_is_complete_when_every_component_is_held() -> None:
    assert rules.is_pathway_complete(("A", "B"), {"A", "B", "C"})
    assert not rules.is_pathway_complete(("A", "B"), {"A"})
    assert not rules.is_pathway_complete((), {"A"})


def test_offering_settings_problems() -> None:
    good = OfferingSettings(None, "instructor", 14)
    assert good.problems(kind="course") == []
    bad = OfferingSettings(datetime(2026, 1, 1), "sometimes", 0, (5, 5, 9))
    found = {p.path for p in bad.problems(kind="course", known_grade_items={5})}
    assert found == {"window_closes_at", "reevaluation_policy", "reevaluation_window_days",
                     "grade_item_ids", "grade_item_ids[2]"}


def _example(**changes) -> DesignPlan:
    from lti_tool.catalogue.importexport import load_text, parse_plan
    from tests.catalogue.conftest import EXAMPLES

    plan = parse_plan(load_text((EXAMPLES / "data-literacy-for-engineers.yaml").read_text()))
    return dataclasses.replace(plan, **changes)
