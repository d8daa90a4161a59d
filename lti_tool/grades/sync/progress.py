"""Progress shown to the "Sync now" page while a sync of this process runs.

Per process and in memory: the page falls back to the `SyncRun` rows for anything else. The
entry lives only while the sync runs; `sync_state` answers the page from one consistent read.
"""

from __future__ import annotations

import threading
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
