"""Gradebook sync: the course's roster and gradebook from the LMS into the store.

`lease` keeps one sync of a context at a time, `writer` writes only what changed, `runner`
runs one sync (in one transaction) and hands the changed learners to the evaluation, and
`progress` is what the "Sync now" page shows while it runs.
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
from lti_tool.grades.sync.runner import (
    EVALUATION_FAILED,
    SyncResult,
    start_background_sync,
    sync_context,
)
from lti_tool.grades.sync.writer import Counts, Writer

__all__ = [
    "EVALUATION_FAILED", "LEASE", "Counts", "LeaseLost", "SyncBusy", "SyncResult", "Writer",
    "acquire_lease", "lease_holder", "progress_of", "release_lease", "start_background_sync",
    "sync_context",
]
