"""Gradebook sync: the course's roster and gradebook from the LMS into the store.

`lease` keeps one sync of a context at a time, `writer` writes only what changed, `runner`
runs one sync (in one transaction) and hands the changed learners to the evaluation, and
`progress` is what the "Sync now" page shows while it waits or runs (in the database), and
`queue` asks for a sync as a durable job (after a launch, "Sync now").
"""

from lti_tool.grades.sync.lease import (
    LEASE,
    LeaseLost,
    SyncBusy,
    acquire_lease,
    lease_holder,
    release_lease,
)
from lti_tool.grades.sync.progress import progress_of
from lti_tool.grades.sync.queue import request_sync
from lti_tool.grades.sync.runner import EVALUATION_FAILED, SyncResult, sync_context
from lti_tool.grades.sync.writer import Counts, Writer

__all__ = [
    "EVALUATION_FAILED", "LEASE", "Counts", "LeaseLost", "SyncBusy", "SyncResult", "Writer",
    "acquire_lease", "lease_holder", "progress_of", "release_lease", "request_sync",
    "sync_context",
]
