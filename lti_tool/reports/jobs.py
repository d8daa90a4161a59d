"""Scheduled work of the quality cycle: employability follow-ups (6 and 12 months after issue).

`follow_up_job(runtime)` is a plain function (the durable job runner can call it by name once
it exists); `register` schedules it hourly with APScheduler until then.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from lti_tool.reports.surveys import send_due_follow_ups
from lti_tool.runtime import Runtime
from lti_tool.store.db import transaction

log = logging.getLogger(__name__)
JOB_ID = "reports.follow_ups"


def follow_up_job(runtime: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Create the follow-ups that fell due and e-mail them (consent and an e-mail needed)."""
    with transaction(runtime.sessions) as db:
        counts = send_due_follow_ups(db, runtime.settings, now=now)
    log.info("follow-ups: %s", counts)
    return counts


def register(scheduler: BaseScheduler, runtime: Runtime) -> None:
    """Hourly at minute 40; one instance at a time, a missed run is made up once."""
    scheduler.add_job(follow_up_job, CronTrigger(minute=40, timezone="UTC"), args=[runtime],
                      id=JOB_ID, replace_existing=True, max_instances=1, coalesce=True,
                      misfire_grace_time=3600)
