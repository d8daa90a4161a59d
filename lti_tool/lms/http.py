"""HTTP to the LMS: timeouts, bounded exponential backoff, and errors a person can act on.

Every client in `lti_tool.lms` goes through `LmsHttp.request`, so that 429 and 5xx replies are
retried the same way everywhere (honouring `Retry-After`, never for longer than the policy's
budget) and a 401/403 becomes a message that names the scope or permission that is missing.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from lti_tool.errors import ToolError
from lti_tool.metrics import observe_lms

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_JSON_BYTES = 64 * 1024 * 1024


class LmsError(ToolError):
    """The LMS could not give us what we asked for (the sync records the message)."""

    status = 502
    code = "lms_error"


class LmsUnavailable(LmsError):
    """The LMS kept failing (5xx, 429, timeouts, dropped connections) after every retry."""

    status = 503
    code = "lms_unavailable"


class LmsPermissionError(LmsError):
    """The LMS refused the token: a scope, a web-service function or a capability is missing."""

    status = 403
    code = "lms_permission"


class LmsBadReply(LmsError):
    """The LMS answered, but not with anything we can read."""

    code = "lms_bad_reply"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `attempts` in all, delays doubling from `base_delay`, capped."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    # Total seconds we are willing to wait across all retries of one request.
    budget: float = 120.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): exponential with a little jitter."""
        delay = self.base_delay * (2 ** (attempt - 1))
        return min(self.max_delay, delay * (1 + random.random() * 0.1))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (it may be a number or an HTTP date); None when unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0
    return seconds


def describe_refusal(status: int, needed: str | None, body: str) -> str:
    """A message for the instructor when the LMS says 401/403."""
    need = f" It needs: {needed}." if needed else ""
    detail = body.strip().replace("\n", " ")[:200]
    tail = f" (LMS said: {detail})" if detail else ""
    if status == 401:
        return ("The LMS did not accept the tool's credentials." + need +
                " Ask the LMS administrator to check the tool's registration." + tail)
    return ("The LMS refused access: the tool lacks a permission." + need +
            " Ask the LMS administrator to grant it." + tail)


class LmsHttp:
    """A `requests.Session` with the retry policy; counts requests for benchmarks."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "lti-microcredentials/0.1")
        self.sleep = sleep
        self._count_lock = threading.Lock()
        self.request_count = 0

    def _count(self) -> None:
        with self._count_lock:
            self.request_count += 1

    def request(
        self,
        method: str,
        url: str,
        *,
        needed: str | None = None,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with retries; return a 2xx/3xx/4xx (not 401/403) response or raise LmsError.

        `needed` names the scope or permission a 401/403 means is missing. Requests that are
        not idempotent are retried only when the LMS said it did not process them (429/503).
        """
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
        policy = self.policy
        kwargs.setdefault("timeout", (policy.connect_timeout, policy.read_timeout))
        waited = 0.0
        last_problem = ""
        for attempt in range(1, policy.attempts + 1):
            delay: float | None = None
            started = time.monotonic()
            try:
                self._count()
                response = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                observe_lms(urlsplit(url).hostname, None, type(exc).__name__)
                last_problem = f"{type(exc).__name__}: {exc}"
                if not idempotent:
                    raise LmsUnavailable(
                        f"The LMS did not answer {method} {_short(url)}: {last_problem}"
                    ) from exc
            else:
                status = response.status_code
                observe_lms(urlsplit(url).hostname, time.monotonic() - started,
                            f"http_{status}" if status >= 400 else None)
                if status in (401, 403):
                    raise LmsPermissionError(
                        describe_refusal(status, needed, response.text),
                        details={"status": status, "url": _short(url), "needed": needed},
                    )
                if status not in RETRY_STATUSES:
                    return response
                last_problem = f"HTTP {status}"
                if not idempotent and status not in (429, 503):
                    raise LmsUnavailable(f"The LMS answered {method} {_short(url)} with {status}.")
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                response.close()
            if attempt == policy.attempts:
                break
            delay = policy.backoff(attempt) if delay is None else min(delay, policy.max_delay)
            if waited + delay > policy.budget:
                break
            log.info("LMS %s %s failed (%s); retry %d in %.2fs", method, _short(url),
                     last_problem, attempt, delay)
            self.sleep(delay)
            waited += delay
        raise LmsUnavailable(
            f"The LMS kept failing on {method} {_short(url)} ({last_problem}) after "
            f"{attempt} attempts; try again later.",
            details={"url": _short(url), "attempts": attempt},
        )

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)


def _short(url: str) -> str:
    """The URL without its query (which may carry a web-service token)."""
    return url.split("?", 1)[0]


def expect_ok(response: requests.Response, what: str) -> None:
    """Raise LmsError with the LMS's words unless the reply is 2xx."""
    if 200 <= response.status_code < 300:
        return
    detail = response.text.strip().replace("\n", " ")[:200]
    raise LmsError(f"The LMS answered {response.status_code} to {what}: {detail or 'no detail'}",
                   details={"status": response.status_code})


def json_body(response: requests.Response, what: str) -> Any:
    """The reply's JSON, or LmsBadReply naming what we were reading."""
    expect_ok(response, what)
    if len(response.content) > MAX_JSON_BYTES:
        raise LmsBadReply(f"The LMS reply to {what} is too large to read.")
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LmsBadReply(f"The LMS reply to {what} is not valid JSON.") from exc
