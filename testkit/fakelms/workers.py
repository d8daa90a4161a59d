"""Functions run in child processes by the concurrency tests (forked, each with its own engine)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier


def race_for_lease(url: str, context_id: int, barrier: Barrier, results: Queue) -> None:
    """Open an own engine (as another machine would), wait for the others, take the lease."""
    from lti_tool.grades.sync import acquire_lease
    from lti_tool.store.db import make_engine, make_session_factory

    engine = make_engine(url)
    factory = make_session_factory(engine)
    barrier.wait(10)
    try:
        results.put(acquire_lease(factory, context_id) or "")
    finally:
        engine.dispose()
