"""APScheduler jobs: revalidation lapsing, scheduled syncs, window closing, grade passback, and
the daily evidence job (retention purge and signed checkpoints).

Each package that has scheduled work exposes `register(scheduler, runtime)` in its `jobs`
module; this module registers them explicitly. `lti-tool worker` runs them in the foreground;
the demo runs them in a background thread.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from lti_tool.catalogue import jobs as catalogue_jobs
from lti_tool.grades import evidence_jobs
from lti_tool.grades import jobs as grades_jobs
from lti_tool.launch import jobs as launch_jobs
from lti_tool.runtime import Runtime

log = logging.getLogger(__name__)
AnyScheduler = TypeVar("AnyScheduler", bound=BaseScheduler)


def register_jobs(scheduler: AnyScheduler, runtime: Runtime) -> AnyScheduler:
    catalogue_jobs.register(scheduler, runtime)  # daily: overdue approved MCs become lapsed
    grades_jobs.register(scheduler, runtime)  # syncs, window closing and grade passback
    evidence_jobs.register(scheduler, runtime)  # daily: retention purge, signed checkpoints
    launch_jobs.register(scheduler, runtime)  # every 15 min: expired logins, nonces, counters
    return scheduler


def blocking_scheduler(runtime: Runtime) -> BlockingScheduler:
    return register_jobs(BlockingScheduler(timezone="UTC"), runtime)


def background_scheduler(runtime: Runtime) -> BackgroundScheduler:
    return register_jobs(BackgroundScheduler(timezone="UTC"), runtime)
