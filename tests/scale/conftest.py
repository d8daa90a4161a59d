"""The scale suite runs only when asked for (`-m scale`, tests/run.sh does it once).

It starts processes of its own (`lti-tool serve`, `lti-tool worker`, each in a session of its
own) and a throwaway PostgreSQL cluster; fixture finalizers stop them. A SIGTERM (`timeout 900`
in tests/run.sh, a CI cancel) would end pytest before any finalizer ran and leave them behind,
so while these tests run a SIGTERM raises KeyboardInterrupt: pytest then stops as on Ctrl-C and
tears the fixtures down (`sigterm_runs_teardown`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "scale" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="the scale suite runs with -m scale (tests/run.sh)")
    for item in items:
        # the marker, not item.keywords: keywords also hold the folder's name, "scale"
        if item.get_closest_marker("scale") is not None:
            item.add_marker(skip)


class Terminated(KeyboardInterrupt):
    """SIGTERM, seen by pytest as Ctrl-C: the run stops and every fixture is torn down."""


@pytest.fixture(scope="session", autouse=True)
def sigterm_runs_teardown() -> Iterator[None]:
    """Set up before the module fixtures that start processes, torn down after them: from here
    to the end of the teardown, the first SIGTERM raises `Terminated` in the main thread and
    later ones are ignored (the finalizers are bounded in time); the previous handler comes
    back at the end."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    received = False

    def terminate(signum: int, frame: object) -> None:
        nonlocal received
        if received:
            return
        received = True
        raise Terminated(f"signal {signum}: stopping, tearing the fixtures down")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
