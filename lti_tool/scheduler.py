"""The job runner entry point: `lti-tool worker` and the demo's in-process runner.

Every piece of background work is an outbox job (`lti_tool.jobs`): scheduled syncs, window
closing, grade passback, revalidation lapsing and the others registered in
`lti_tool.jobs.registry`. On PostgreSQL `lti-tool worker` is a procrastinate worker (any number
of them, on any number of machines: each job runs once, periodic work is scheduled once); on
SQLite it is the in-process runner, and the demo runs that runner in a thread.
"""

from __future__ import annotations

import logging
import signal
import threading

from lti_tool.jobs import worker
from lti_tool.jobs.registry import registry
from lti_tool.jobs.runner import InProcessRunner
from lti_tool.runtime import Runtime

log = logging.getLogger(__name__)
# Logged when SIGTERM or Ctrl-C arrives (the jobs in hand are still being finished).
STOPPING = "worker stopping: no new jobs; finishing the jobs in hand"


def uses_queue_server(runtime: Runtime) -> bool:
    return runtime.engine.dialect.name == "postgresql"


def in_process_runner(runtime: Runtime, *, poll: float = 1.0) -> InProcessRunner:
    """The runner the demo (and a one-machine SQLite worker) uses; call `.start()`."""
    return InProcessRunner(runtime, registry(), poll=poll)


def run_worker(runtime: Runtime, *, concurrency: int = 4) -> None:
    """Run jobs in the foreground until SIGTERM or Ctrl-C; the job in hand is finished first."""
    if uses_queue_server(runtime):
        worker.run(runtime, concurrency=concurrency)
        return
    runner = in_process_runner(runtime)
    stopped = threading.Event()

    def stop(*_: object) -> None:
        log.info(STOPPING)
        stopped.set()
        runner.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.start()
    stopped.wait()
    runner.stop()
    log.info("worker stopped")
