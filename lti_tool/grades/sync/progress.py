"""Progress shown to the "Sync now" page while a sync of this process runs.

Per process and in memory: the page falls back to the `SyncRun` rows for anything else. The
entry lives only while the sync runs; `sync_state` answers the page from one consistent read.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

_progress_lock = threading.Lock()
_progress: dict[int, dict[str, Any]] = {}


def set_progress(context_id: int, **values: Any) -> None:
    with _progress_lock:
        _progress.setdefault(context_id, {}).update(values)


def progress_of(context_id: int) -> dict[str, Any] | None:
    with _progress_lock:
        entry = _progress.get(context_id)
        return dict(entry) if entry else None


def is_running(last_status: str | None, last_started: datetime | None, *, lease_held: bool,
               live_state: str | None, now: datetime, lease: timedelta) -> bool:
    """Whether a sync of the context runs, from one read of what the page shows.

    The last run's own row wins: a run recorded as `running` is running (the progress and the
    lease may already be gone when the page reads them a moment later), unless it is older than
    a lease and nobody holds one (a worker killed mid-sync). Before its row exists, a starting
    sync shows through the lease or the in-memory progress.
    """
    if last_status == "running" and last_started is not None:
        return lease_held or live_state == "running" or last_started > now - lease
    return lease_held or live_state == "running"
