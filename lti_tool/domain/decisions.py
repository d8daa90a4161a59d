"""The decision state machine of one learner in one offering.

    in_progress --all required LOs attained--> passed
    in_progress --window closes---------------> failed
    failed --re-evaluation granted (once)-----> reevaluation_granted
    reevaluation_granted --all attained-------> passed
    reevaluation_granted --its window closes--> failed_final
    in_progress | failed | reevaluation_granted --prior learning recognised--> passed

Directive Art. 9/3: "Unsuccessful learners may be granted a one-time right to re-evaluation":
the count of re-evaluations is part of the state, so a second grant is refused whatever the
current status. Every refusal raises `IllegalTransition` with a message a person can act on
(the web layer answers 409).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from lti_tool.domain.errors import IllegalTransition

IN_PROGRESS = "in_progress"
PASSED = "passed"
FAILED = "failed"
REEVALUATION_GRANTED = "reevaluation_granted"
FAILED_FINAL = "failed_final"
STATUSES = (IN_PROGRESS, PASSED, FAILED, REEVALUATION_GRANTED, FAILED_FINAL)
FINAL_STATUSES = (PASSED, FAILED_FINAL)
OPEN_STATUSES = (IN_PROGRESS, REEVALUATION_GRANTED)

# Events
ATTAIN_ALL = "attain_all"
CLOSE = "close"
GRANT_REEVALUATION = "grant_reevaluation"
RECOGNISE_PRIOR_LEARNING = "recognise_prior_learning"
EVENTS = (ATTAIN_ALL, CLOSE, GRANT_REEVALUATION, RECOGNISE_PRIOR_LEARNING)

MAX_REEVALUATIONS = 1

_NEXT: dict[tuple[str, str], str] = {
    (IN_PROGRESS, ATTAIN_ALL): PASSED,
    (IN_PROGRESS, CLOSE): FAILED,
    (FAILED, GRANT_REEVALUATION): REEVALUATION_GRANTED,
    (REEVALUATION_GRANTED, ATTAIN_ALL): PASSED,
    (REEVALUATION_GRANTED, CLOSE): FAILED_FINAL,
    (IN_PROGRESS, RECOGNISE_PRIOR_LEARNING): PASSED,
    (FAILED, RECOGNISE_PRIOR_LEARNING): PASSED,
    (REEVALUATION_GRANTED, RECOGNISE_PRIOR_LEARNING): PASSED,
}

_REFUSALS = {
    PASSED: "the learner has already passed",
    FAILED_FINAL: "the decision is final (failed after the re-evaluation)",
    FAILED: "the assessment window has closed and the learner has not been granted a "
            "re-evaluation",
    IN_PROGRESS: "the learner's assessment window is still open",
    REEVALUATION_GRANTED: "a re-evaluation is already under way",
}

_ACTIONS = {
    ATTAIN_ALL: "pass the learner",
    CLOSE: "close the assessment",
    GRANT_REEVALUATION: "grant a re-evaluation",
    RECOGNISE_PRIOR_LEARNING: "recognise prior learning",
}


@dataclass(frozen=True)
class DecisionState:
    status: str = IN_PROGRESS
    reevaluations_used: int = 0

    @property
    def attempt(self) -> int:
        """1 for the first assessment, 2 during and after the re-evaluation."""
        return 1 + self.reevaluations_used

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def can(state: DecisionState, event: str) -> bool:
    try:
        transition(state, event)
    except IllegalTransition:
        return False
    return True


def transition(state: DecisionState, event: str) -> DecisionState:
    """The state after `event`, or `IllegalTransition` saying why not."""
    if event not in EVENTS:
        raise IllegalTransition(f"unknown decision event {event!r}")
    if event == GRANT_REEVALUATION and state.reevaluations_used >= MAX_REEVALUATIONS:
        raise IllegalTransition(
            "Cannot grant a re-evaluation: this learner has already had their one "
            "re-evaluation (Art. 9/3 allows it once)."
        )
    target = _NEXT.get((state.status, event))
    if target is None:
        raise IllegalTransition(
            f"Cannot {_ACTIONS[event]}: {_REFUSALS[state.status]} (status {state.status})."
        )
    used = state.reevaluations_used + (1 if event == GRANT_REEVALUATION else 0)
    return replace(state, status=target, reevaluations_used=used)


# --- assessment windows ----------------------------------------------------------------------

def window_open(closes_at: datetime | None, now: datetime, *,
                finalized_at: datetime | None = None) -> bool:
    """Whether an assessment window is still open at `now`: until it is finalized, or until
    its closing moment comes (the moment itself is closed); one without a date stays open
    until finalized.

    The one definition of an open window: an offering's (closes at its date or when an
    instructor finalizes it) and a re-evaluation's (closes at its own date). The store's
    `Offering.is_open` / `Attempt.is_open` give this as Python and as one SQL expression
    (`lti_tool.store.models.windows`); a property test holds the two together.
    """
    return finalized_at is None and (closes_at is None or now < closes_at)


# --- asking for the re-evaluation -------------------------------------------------------------

# Days a failed learner may ask for their re-evaluation (and the re-evaluation window's length)
# when the offering does not say.
DEFAULT_REEVALUATION_WINDOW_DAYS = 14


def request_deadline(failed_at: datetime | None, window_days: int | None) -> datetime | None:
    """The last moment a learner may ask for their re-evaluation: `window_days` (default 14)
    after the failing decision; None when the assessment has not closed yet."""
    if failed_at is None:
        return None
    return failed_at + timedelta(days=window_days or DEFAULT_REEVALUATION_WINDOW_DAYS)


def request_refusal(state: DecisionState, *, deadline: datetime | None, now: datetime,
                    already_requested: bool = False) -> str | None:
    """Why the learner may not ask for a re-evaluation now, or None when they may.

    The one rule both the request and the learner's page use (the page shows the button only
    when this is None, and the deadline beside it).
    """
    if state.reevaluations_used >= MAX_REEVALUATIONS:
        return "You have already had your one re-evaluation for this micro-credential."
    if state.status != FAILED:
        return ("A re-evaluation can be requested only after the assessment has closed "
                f"without a pass (your status is {state.status}).")
    if deadline is not None and now > deadline:
        return f"Requests for a re-evaluation closed on {deadline:%Y-%m-%d %H:%M} UTC."
    if already_requested:
        return "You have already requested a re-evaluation; your instructor will decide."
    return None
