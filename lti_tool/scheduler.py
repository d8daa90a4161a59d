"""APScheduler jobs: revalidation lapsing, scheduled syncs, window closing and grade passback.

Each package that has scheduled work exposes `register(scheduler, runtime)` in its `jobs`
module; this module only collects them. `lti-tool worker` runs them in the foreground; the demo
runs them in a background thread.
"""

from __future__ import annotations

import importlib
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from lti_tool.runtime import Runtime

log = logging.getLogger(__name__)

JOB_MODULES = (
    "lti_tool.catalogue.jobs",  # daily: approved MCs past revalidation become lapsed
    "lti_tool.grades.jobs",  # every sync_interval_minutes: sync active offerings
    "lti_tool.reports.jobs",  # hourly: employability follow-ups fall due and are e-mailed
)
EVALUATION_INTERVAL_MINUTES = 5


def _evaluation_job(runtime: Runtime) -> None:
    from lti_tool.grades.evaluation import run_scheduled

    summary, counts = run_scheduled(runtime)
    log.info("evaluation job: %s; passback %s", summary, counts)


def register_jobs(scheduler: BaseScheduler, runtime: Runtime) -> BaseScheduler:
    for name in JOB_MODULES:
        importlib.import_module(name).register(scheduler, runtime)
    # Window closing and grade passback: a few minutes of delay is fine for both.
    scheduler.add_job(
        _evaluation_job, IntervalTrigger(minutes=EVALUATION_INTERVAL_MINUTES), args=[runtime],
        id="evaluation.close_windows_and_passback", replace_existing=True, max_instances=1,
        coalesce=True,
    )
    return scheduler


def blocking_scheduler(runtime: Runtime) -> BlockingScheduler:
    return register_jobs(BlockingScheduler(timezone="UTC"), runtime)  # type: ignore[return-value]


def background_scheduler(runtime: Runtime) -> BackgroundScheduler:
    return register_jobs(BackgroundScheduler(timezone="UTC"), runtime)  # type: ignore[return-value]
