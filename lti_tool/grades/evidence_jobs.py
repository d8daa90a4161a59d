"""The daily evidence job: the retention purge, then a signed checkpoint of every chain.

`daily_evidence` is a plain function of the runtime; the durable job runner runs it daily as
`evidence.daily` (`lti_tool.jobs.registry`).
"""

from __future__ import annotations

import logging

from lti_tool.grades.evidence import seal_all
from lti_tool.grades.lifecycle import purge_expired
from lti_tool.runtime import Runtime
from lti_tool.store.db import transaction

log = logging.getLogger(__name__)


def daily_evidence(runtime: Runtime) -> dict:
    """Purge what is past its retention period, then checkpoint every chain (even unchanged)."""
    with transaction(runtime.sessions) as db:
        purged = purge_expired(db, runtime.settings)
        checkpoints = seal_all(db, runtime.settings, "daily", always=True)
    log.info("evidence daily: purged %s; %s checkpoint(s)", purged, checkpoints)
    return {"purged": purged, "checkpoints": checkpoints}
