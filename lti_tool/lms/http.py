"""HTTP to the LMS: bounded exponential backoff, and errors a person can act on.

Every client in `lti_tool.lms` goes through `LmsHttp.request`, so that 429 and 5xx replies are
retried the same way everywhere (honouring `Retry-After`, never for longer than the policy's
budget) and a 401/403 becomes a message that names the scope or permission that is missing.
Each attempt is one call of the guarded `lti_tool.outbound` client (recorded hosts, public
addresses, no redirects elsewhere, size and time caps). What an LMS says in an error reply is
logged, never put in a message a page or the CLI shows.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from lti_tool.errors import ToolError
from lti_tool.metrics import observe_lms
from lti_tool.outbound import (
    OutboundClient,
    OutboundPolicy,
    OutboundRefused,
    OutboundTimeout,
    OutboundTooLarge,
    log_error_body,
)

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


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


class LmsHostRefused(LmsError):
    """The tool refused the call: a host not recorded for the registration, an address that
    is not public, a redirect elsewhere (logged; the message says what to do)."""

    status = 502
    code = "lms_host_refused"


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


def describe_refusal(status: int, needed: str | None) -> str:
    """A message for the instructor when the LMS says 401/403 (its own words go to the log)."""
    need = f" It needs: {needed}." if needed else ""
    if status == 401:
        return (f"The LMS did not accept the tool's credentials (HTTP 401).{need}"
                " Ask the LMS administrator to check the tool's registration.")
    return (f"The LMS refused access (HTTP 403): the tool lacks a permission.{need}"
            " Ask the LMS administrator to grant it.")


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = 0


class LmsHttp:
    """The retry policy over the guarded outbound client; counts requests for benchmarks.

    `for_platform(platform)` gives a view that reaches only that registration's recorded
    hosts; every LMS client of a registration is built on such a view.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        outbound: OutboundClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        _counter: _Counter | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.outbound = outbound or OutboundClient(OutboundPolicy())
        self.sleep = sleep
        self._counter = _counter or _Counter()

    @property
    def request_count(self) -> int:
        return self._counter.value

    def _count(self) -> None:
        with self._counter.lock:
            self._counter.value += 1

    def for_hosts(self, hosts: Iterable[str]) -> LmsHttp:
        return LmsHttp(self.policy, outbound=self.outbound.for_hosts(hosts), sleep=self.sleep,
                       _counter=self._counter)

    def for_platform(self, platform: Any) -> LmsHttp:
        return self.for_hosts(platform.allowed_hosts)

    def request(
        self,
        method: str,
        url: str,
        *,
        needed: str | None = None,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        json: Any = None,
        what: str = "",
    ) -> requests.Response:
        """Send with retries; return a 2xx/3xx/4xx (not 401/403) response or raise LmsError.

        `needed` names the scope or permission a 401/403 means is missing. Requests that are
        not idempotent are retried only when the LMS said it did not process them (429/503).
        """
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
        policy = self.policy
        waited = 0.0
        last_problem = ""
        last_reply: requests.Response | None = None
        for attempt in range(1, policy.attempts + 1):
            delay: float | None = None
            started = time.monotonic()
            try:
                self._count()
                response = self.outbound.request(
                    method, url, headers=headers, data=data, json=json, what=what,
                    deadline_at=time.monotonic() + policy.read_timeout)
            except OutboundRefused as exc:
                raise LmsHostRefused(exc.message) from exc
            except OutboundTooLarge as exc:
                raise LmsBadReply(exc.message) from exc
            except (requests.ConnectionError, requests.Timeout, OutboundTimeout) as exc:
                observe_lms(urlsplit(url).hostname, None, type(exc).__name__)
                last_problem = type(exc).__name__
                log.info("LMS %s %s: %s", method, _short(url), exc)
                if not idempotent:
                    raise LmsUnavailable(
                        f"The LMS did not answer {method} {_short(url)} ({last_problem})."
                    ) from exc
            else:
                status = response.status_code
                observe_lms(urlsplit(url).hostname, time.monotonic() - started,
                            f"http_{status}" if status >= 400 else None)
                if status in (401, 403):
                    log_error_body("LMS refusal", response)
                    raise LmsPermissionError(
                        describe_refusal(status, needed),
                        details={"status": status, "url": _short(url), "needed": needed},
                    )
                if status not in RETRY_STATUSES:
                    return response
                last_problem = f"HTTP {status}"
                if not idempotent and status not in (429, 503):
                    log_error_body("LMS error", response)
                    raise LmsUnavailable(f"The LMS answered {method} {_short(url)} with {status}.")
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                last_reply = response
            if attempt == policy.attempts:
                break
            delay = policy.backoff(attempt) if delay is None else min(delay, policy.max_delay)
            if waited + delay > policy.budget:
                break
            log.info("LMS %s %s failed (%s); retry %d in %.2fs", method, _short(url),
                     last_problem, attempt, delay)
            self.sleep(delay)
            waited += delay
        if last_reply is not None:
            log_error_body("LMS error", last_reply)
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
    """Raise LmsError naming the status unless the reply is 2xx; the body goes to the log."""
    if 200 <= response.status_code < 300:
        return
    log_error_body(f"LMS reply to {what}", response)
    raise LmsError(f"The LMS answered HTTP {response.status_code} to {what}. Try again later; "
                   "if it persists, the LMS administrator can find the reason in the LMS's logs "
                   "(the tool's log has the LMS's answer).",
                   details={"status": response.status_code})


def json_body(response: requests.Response, what: str) -> Any:
    """The reply's JSON, or LmsBadReply naming what we were reading."""
    expect_ok(response, what)
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LmsBadReply(f"The LMS reply to {what} is not valid JSON.") from exc
