"""Scheduled work of the quality cycle: employability follow-ups (6 and 12 months after issue).

`follow_up_job(runtime)` is a plain function; the durable job runner runs it hourly as
`reports.follow_ups` (`lti_tool.jobs.registry`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from lti_tool.reports.surveys import send_due_follow_ups
from lti_tool.runtime import Runtime
from lti_tool.store.db import transaction

log = logging.getLogger(__name__)


def follow_up_job(runtime: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Create the follow-ups that fell due and e-mail them (consent and an e-mail needed)."""
    with transaction(runtime.sessions) as db:
        counts = send_due_follow_ups(db, runtime.settings, now=now)
    log.info("follow-ups: %s", counts)
    return counts
