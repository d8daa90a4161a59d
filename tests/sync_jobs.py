"""Running the durable jobs a test stored (a requested sync, passback): the in-process runner
of SQLite and the demo, the same `execute` path the PostgreSQL workers take."""

from __future__ import annotations

import threading

from lti_tool.jobs.registry import registry
from lti_tool.jobs.runner import InProcessRunner
from lti_tool.runtime import Runtime


def run_jobs(runtime: Runtime) -> int:
    """Run every due job once (periodic work left out); how many ran."""
    return InProcessRunner(runtime, registry(), periodic=False).run_once()


def run_jobs_in_background(runtime: Runtime) -> threading.Thread:
    """`run_jobs` in a thread, for a test that watches a job while it runs (join it)."""
    thread = threading.Thread(target=run_jobs, args=(runtime,), name="test-job-runner",
                              daemon=True)
    thread.start()
    return thread
