"""The catalogue's scheduled work: lapse micro-credentials whose revalidation is overdue.

`lapse_overdue_job(runtime)` is the job function; `lti_tool.jobs.registry` runs it daily at
02:15 UTC (`catalogue.lapse_overdue`).
"""

from __future__ import annotations

import logging
from datetime import datetime

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
