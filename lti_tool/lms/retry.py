"""How hard the tool retries an LMS: one policy for the sync and for grade passback.

Tests and benchmarks shorten the backoff through `settings.extra` (`sync_retry_*`,
`sync_read_timeout`).
"""

from __future__ import annotations

from lti_tool.lms.http import RetryPolicy
from lti_tool.settings import Settings


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy for calls to the LMS, from the settings (defaults otherwise)."""
    extra = settings.extra or {}
    defaults = RetryPolicy()
    return RetryPolicy(
        attempts=int(extra.get("sync_retry_attempts", defaults.attempts)),
        base_delay=float(extra.get("sync_retry_base_delay", defaults.base_delay)),
        max_delay=float(extra.get("sync_retry_max_delay", defaults.max_delay)),
        budget=float(extra.get("sync_retry_budget", defaults.budget)),
        read_timeout=float(extra.get("sync_read_timeout", defaults.read_timeout)),
    )
