"""Property tests of the report's figures and the survey rules (lti_tool.domain)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lti_tool.domain import reports as fig
from lti_tool.domain import surveys as rules
from lti_tool.domain.errors import ValidationFailed

STATUSES = (None, "in_progress", "passed", "failed", "reevaluation_granted", "failed_final")
LIKERT = ("q1", "q2")


def mc(mc_id: int) -> fig.McFacts:
    return fig.McFacts(mc_id=mc_id, code=f"MC{mc_id}", title=f"MC {mc_id}",
                       kind=("course", "embedded")[mc_id % 2],
                       participation_form=("online", "blended", "")[mc_id % 3],
                       status="approved", eqf_level=6, ects="1", workload_hours="25",
                       pathway=False, offerings=1, outcome_codes=("LO1", "LO2"))


learner = st.builds(
    fig.LearnerFact,
    mc_id=st.integers(1, 4),
    status=st.sampled_from(STATUSES),
    passed_via=st.sampled_from((None, "evaluation", "prior_learning")),
    reevaluations_used=st.integers(0, 1),
    outcomes=st.fixed_dictionaries({"LO1": st.sampled_from((None, True, False)),
                                    "LO2": st.sampled_from((None, True, False))}))
rating = st.builds(fig.RatingFact, mc_id=st.integers(1, 4), skipped=st.booleans(),
                   ratings=st.dictionaries(st.sampled_from(LIKERT), st.integers(1, 5)))
follow_up = st.builds(fig.FollowUpFact, mc_id=st.integers(1, 4), months=st.sampled_from((6, 12)),
                      outcomes=st.one_of(st.none(), st.just(("not_yet",)),
                                         st.just(("new_job", "promotion"))))
feedback = st.builds(fig.FeedbackFact, mc_id=st.integers(1, 4), role=st.just("employer"),
                     themes=st.lists(st.sampled_from(rules.FEEDBACK_THEMES), min_size=1,
                                     max_size=3, unique=True).map(tuple),
                     rating=st.one_of(st.none(), st.integers(1, 5)))
credential = st.builds(fig.CredentialFact, mc_id=st.integers(1, 4), issued_in_year=st.booleans(),
                       accepted=st.booleans(), shared=st.booleans(),
                       revoked_in_year=st.booleans())
year_facts = st.builds(
    fig.YearFacts, year=st.just(2025), mcs=st.just([mc(i) for i in range(1, 5)]),
    learners=st.lists(learner, max_size=60), credentials=st.lists(credential, max_size=30),
    ratings=st.lists(rating, max_size=40), follow_ups=st.lists(follow_up, max_size=30),
    feedback=st.lists(feedback, max_size=30), likert_codes=st.just(LIKERT))


def rates_of(value, path=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from rates_of(inner, f"{path}.{key}")
    elif path.endswith(("rate", "_rate")) and value is not None and not fig.is_suppressed(value):
        yield path, value


@settings(max_examples=150, deadline=None)
@given(year_facts, st.integers(1, 8))
def test_counts_add_up_and_rates_stay_within_0_and_1(facts, min_cell) -> None:
    result = fig.year_figures(facts, min_cell)
    overall = result["overall"]
    for scope in [overall, *result["per_mc"].values()]:
        s = scope["success"]
        assert s["passed"] + s["failed"] + s["still_open"] == s["assessed"]
        assert s["passed_first_attempt"] + s["passed_after_reevaluation"] + \
            s["passed_by_prior_learning"] == s["passed"]
        assert min(s["passed_first_attempt"], s["still_open"]) >= 0
        assert scope["participation"]["assessed"] <= scope["participation"]["enrolled"]
        r = scope["reevaluation"]
        assert r["passed"] + r["failed_final"] + r["open"] == r["granted"]
        c = scope["credentials"]
        assert c["accepted"] <= c["issued"] and c["shared"] <= c["issued"]
        for path, value in rates_of(scope):
            assert 0 <= value <= 1, path
    for key in ("enrolled", "assessed", "offerings"):
        assert overall["participation"][key] == sum(
            f["participation"][key] for f in result["per_mc"].values())
    for key in ("passed", "failed", "assessed"):
        assert overall["success"][key] == sum(f["success"][key] for f in result["per_mc"].values())
    assert sum(g["enrolled"] for g in overall["participation"]["by_kind"].values()) == \
        overall["participation"]["enrolled"]
    assert overall["credentials"]["issued"] == sum(
        f["credentials"]["issued"] for f in result["per_mc"].values())


def _raw_sizes(facts: fig.YearFacts) -> dict[str, dict[int, int]]:
    """The true answer counts per MC, from the facts (what suppression must not reveal)."""
    sizes: dict[str, dict[int, int]] = {}
    for code in LIKERT:
        sizes[f"satisfaction.{code}"] = {m.mc_id: sum(
            1 for r in facts.ratings if r.mc_id == m.mc_id and not r.skipped and code in r.ratings)
            for m in facts.mcs}
    sizes["employability"] = {m.mc_id: sum(1 for f in facts.follow_ups
                                           if f.mc_id == m.mc_id and f.outcomes is not None)
                              for m in facts.mcs}
    sizes["stakeholders"] = {m.mc_id: sum(1 for f in facts.feedback if f.mc_id == m.mc_id)
                             for m in facts.mcs}
    return sizes


def _shown_n(result: dict, group: str, mc_id: int | None):
    scope = result["overall"] if mc_id is None else result["per_mc"][mc_id]
    if group.startswith("satisfaction."):
        return scope["satisfaction"]["items"][group.split(".")[1]]["n"]
    return scope["employability"]["answered"] if group == "employability" else \
        scope["stakeholders"]["n"]


@settings(max_examples=200, deadline=None)
@given(year_facts, st.integers(2, 8))
def test_suppression_never_leaks_a_small_cell_through_the_total(facts, min_cell) -> None:
    """Whatever is shown, total minus the shown cells is 0 or at least min_cell answers,
    unless the total itself is withheld; and no shown cell rests on 1..min_cell-1 answers."""
    result = fig.year_figures(facts, min_cell)
    for group, sizes in _raw_sizes(facts).items():
        shown = {m: _shown_n(result, group, m) for m in sizes}
        for m, value in shown.items():
            if not fig.is_suppressed(value):
                assert value == sizes[m]
                assert value == 0 or value >= min_cell, (group, m)
        total = _shown_n(result, group, None)
        if fig.is_suppressed(total):
            assert 0 < sum(sizes.values()) < min_cell
            continue
        residual = total - sum(v for v in shown.values() if not fig.is_suppressed(v))
        assert residual == 0 or residual >= min_cell, (group, shown, total)


@settings(max_examples=100, deadline=None)
@given(year_facts, year_facts, st.integers(2, 8))
def test_a_difference_is_withheld_whenever_either_year_is(now, before, min_cell) -> None:
    current = fig.year_figures(now, min_cell)
    previous = fig.year_figures(fig.YearFacts(**{**before.__dict__, "year": 2024}), min_cell)
    changes = fig.year_on_year(current, previous)
    for scope, data in [("overall", changes["overall"]), *changes["per_mc"].items()]:
        for key, entry in data.items():
            if fig.is_suppressed(entry["current"]) or fig.is_suppressed(entry["previous"]):
                assert fig.is_suppressed(entry["change"]), (scope, key)
            elif entry["current"] is not None and entry["previous"] is not None:
                assert entry["change"] == pytest.approx(entry["current"] - entry["previous"])


def test_suppression_plan_adds_the_smallest_cell_when_one_small_cell_stands_alone() -> None:
    hidden, total_hidden = fig.suppression_plan({"a": 3, "b": 9, "c": 6, "d": 0}, 5)
    assert hidden == {"a", "c"} and not total_hidden
    assert fig.suppression_plan({"a": 2, "b": 2}, 5) == ({"a", "b"}, True)
    assert fig.suppression_plan({"a": 5, "b": 0}, 5) == (set(), False)


@given(st.dictionaries(st.sampled_from(("q1", "q2", "comment", "other")),
                       st.text(max_size=30)))
def test_satisfaction_form_accepts_only_ratings_1_to_5(form) -> None:
    try:
        answer = rules.parse_satisfaction(rules.DEFAULT_QUESTIONS, form)
    except ValidationFailed as exc:
        assert all(p.path in ("q1", "q2") for p in exc.problems)
        return
    assert all(v in rules.LIKERT_VALUES for v in answer.ratings.values())
    assert set(answer.ratings) <= {"q1", "q2"}


def test_question_sets_need_one_free_text_and_english() -> None:
    assert rules.question_problems(rules.DEFAULT_QUESTIONS) == []
    two_texts = [*rules.DEFAULT_QUESTIONS, rules.Question("c2", "text", {"en": "More?"})]
    assert rules.question_problems(two_texts)
    no_english = [rules.Question("q1", "likert", {"en": "", "tr": "Soru"}),
                  rules.Question("c", "text", {"en": "Why?"})]
    assert any(p.path == "questions[0].text.en" for p in rules.question_problems(no_english))


def test_follow_ups_fall_due_at_6_then_12_months_and_not_before() -> None:
    issued = datetime(2025, 8, 31, 9, 0, tzinfo=UTC)
    assert rules.follow_up_due(issued, datetime(2026, 2, 27, tzinfo=UTC)) is None
    assert rules.follow_up_due(issued, datetime(2026, 2, 28, 10, tzinfo=UTC)) == 6
    assert rules.follow_up_due(issued, datetime(2026, 8, 31, 10, tzinfo=UTC)) == 12


def test_employability_not_yet_excludes_other_answers() -> None:
    assert rules.parse_employability(["promotion", "new_job"]) == ("new_job", "promotion")
    with pytest.raises(ValidationFailed):
        rules.parse_employability(["not_yet", "promotion"])
    with pytest.raises(ValidationFailed):
        rules.parse_employability(["<script>"])
    with pytest.raises(ValidationFailed):
        rules.parse_employability([])


@given(st.text(max_size=20), st.lists(st.text(max_size=15), max_size=5), st.text(max_size=3),
       st.text(max_size=2500))
def test_stakeholder_input_is_closed_vocabulary_and_bounded(role, themes, rating, text) -> None:
    try:
        parsed = rules.parse_stakeholder(role, themes, rating, text)
    except ValidationFailed:
        return
    assert parsed.role in rules.STAKEHOLDER_ROLES
    assert parsed.themes and set(parsed.themes) <= set(rules.FEEDBACK_THEMES)
    assert parsed.rating is None or 1 <= parsed.rating <= 5
    assert len(parsed.text) <= rules.MAX_FREE_TEXT
