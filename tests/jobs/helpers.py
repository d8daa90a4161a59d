"""Test job functions (a module of its own: conftest modules may be imported twice)."""

from __future__ import annotations

from lti_tool.jobs.runner import RetryLater

CALLS: list[tuple[str, dict]] = []


def record(runtime, payload):
    CALLS.append(("record", payload))
    return {"seen": payload.get("n")}


def flaky(runtime, payload):
    CALLS.append(("flaky", payload))
    if sum(1 for name, _ in CALLS if name == "flaky") < payload.get("succeed_on", 99):
        raise RetryLater("the LMS is busy", seconds=0)
    return {"ok": True}


def broken(runtime, payload):
    CALLS.append(("broken", payload))
    raise ValueError("the line item was refused: 422 scoreMaximum must be positive")
