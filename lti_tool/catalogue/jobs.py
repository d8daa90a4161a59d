"""The catalogue's scheduled work: lapse micro-credentials whose revalidation is overdue.

`register(scheduler, runtime)` adds the daily job to an APScheduler scheduler (the worker calls
it); `lapse_overdue_job(runtime)` is the job itself, usable on its own.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from lti_tool.catalogue import service
from lti_tool.runtime import Runtime
from lti_tool.store.db import transaction

log = logging.getLogger(__name__)
JOB_ID = "catalogue.lapse_overdue"


def lapse_overdue_job(runtime: Runtime, now: datetime | None = None) -> list[int]:
    """One run in its own transaction: approved versions past due become `lapsed`."""
    with transaction(runtime.sessions) as db:
        lapsed = service.lapse_overdue(db, now)
    return lapsed


def register(scheduler: BaseScheduler, runtime: Runtime) -> None:
    """Run daily at 02:15 UTC; one instance at a time, a missed run is made up once."""
    scheduler.add_job(lapse_overdue_job, CronTrigger(hour=2, minute=15, timezone="UTC"),
                      args=[runtime], id=JOB_ID, replace_existing=True, max_instances=1,
                      coalesce=True, misfire_grace_time=6 * 3600)
