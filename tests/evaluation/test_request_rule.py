"""The re-evaluation request rule (domain): property tests for the deadline and the refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from lti_tool.domain import decisions as flow

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC))
window_days = st.one_of(st.none(), st.integers(min_value=0, max_value=365))
states = st.builds(flow.DecisionState, st.sampled_from(flow.STATUSES),
                   st.integers(min_value=0, max_value=2))


@given(moments, window_days)
def test_the_deadline_is_the_window_after_the_failing_decision(failed_at, days) -> None:
    deadline = flow.request_deadline(failed_at, days)
    assert deadline == failed_at + timedelta(days=days or flow.DEFAULT_REEVALUATION_WINDOW_DAYS)
    assert deadline > failed_at
    assert flow.request_deadline(None, days) is None


@given(states, moments, st.one_of(st.none(), moments), st.booleans())
def test_a_request_is_allowed_exactly_when_every_condition_holds(state, now, deadline,
                                                                 asked) -> None:
    refusal = flow.request_refusal(state, deadline=deadline, now=now, already_requested=asked)
    allowed = (state.status == flow.FAILED and state.reevaluations_used < flow.MAX_REEVALUATIONS
               and (deadline is None or now <= deadline) and not asked)
    assert (refusal is None) == allowed
    if refusal is not None:
        assert refusal.endswith(".") and len(refusal) < 200


@given(moments, window_days, st.integers(min_value=0, max_value=400 * 24 * 3600))
def test_the_deadline_closes_requests_and_nothing_else_does(failed_at, days, seconds) -> None:
    state = flow.DecisionState(flow.FAILED, 0)
    deadline = flow.request_deadline(failed_at, days)
    now = failed_at + timedelta(seconds=seconds)
    refusal = flow.request_refusal(state, deadline=deadline, now=now)
    assert (refusal is None) == (now <= deadline)
    if refusal is not None:
        assert f"{deadline:%Y-%m-%d %H:%M}" in refusal


@given(st.lists(st.sampled_from(["Instructor", "Learner", "TeachingAssistant", "Mentor"]),
                max_size=4), st.randoms())
def test_launch_and_roster_spellings_of_roles_are_the_same(names, rng) -> None:
    from lti_tool.domain.roles import LIS, same_roles

    uris = [f"{LIS}membership#{n}" for n in names]
    rng.shuffle(uris)
    assert same_roles(names, uris)
    if names:
        assert not same_roles(names, [*uris, f"{LIS}membership#ContentDeveloper"])
