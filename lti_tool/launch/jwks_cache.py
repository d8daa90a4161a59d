"""Platform public keys: fetched from the platform's JWKS URL, cached per process.

Nothing a browser sends can make the tool hammer a platform's JWKS URL:

- a launch whose `kid` is not in the cached set triggers a refetch (the platform rotated its
  key) only when the URL was not fetched in the last `cooldown` (10) seconds, and only once per
  kid: a kid still absent after a refetch made for it causes no other for `kid_retry` (300)
  seconds (long enough to starve a flood, short enough that a platform which signed with a key
  before publishing it recovers by itself);
- concurrent misses on one URL wait for a single fetch instead of each making one;
- a platform that re-keys under the same `kid` (a practice platform restarting): when a
  signature fails with a cached key older than `rekey_age` (60) seconds, `refresh_after_failure`
  refetches once (single flight per URL; the fresh set is then younger than a minute, so a
  flood of bad signatures makes at most one fetch a minute) and the launch is decided with
  the fresh key;
- a failed fetch (unreachable, slow, not a JWKS) is remembered for `cooldown` seconds, during
  which launches get the same 502 at once instead of each trying again;
- a fetch goes through the guarded outbound client (`lti_tool.outbound`): public addresses
  only unless LTI_TOOL_OUTBOUND_ALLOW lists them, bounded in time (an overall deadline, so a
  server that drips bytes cannot hold a worker) and size, redirects only on the key set's own
  host and never to plain HTTP.

The cache is keyed by URL, so registrations that share a key set (Canvas cloud schools) share
one rate limit. Each worker process has its own cache.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
import urllib3

from lti_tool.errors import LaunchError
from lti_tool.outbound import (
    OutboundClient,
    OutboundError,
    OutboundPolicy,
    OutboundTimeout,
    OutboundTooLarge,
    host_key,
    log_error_body,
    summary,
)

MAX_JWKS_BYTES = 512 * 1024
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 5.0
FETCH_DEADLINE = 8.0
MAX_MISSING_KIDS = 1000

Fetcher = Callable[[str], dict]


class PlatformKeysUnavailable(LaunchError):
    """The platform's key set could not be fetched: the LMS side is at fault, not the browser."""

    status = 502
    code = "platform_keys_unavailable"


def fetch_jwks(url: str, *, outbound: OutboundClient | None = None,
               read_timeout: float = READ_TIMEOUT, deadline: float = FETCH_DEADLINE) -> dict:
    """GET a JWKS document through the guarded client (public addresses unless allowed, the
    key set's own host only, redirects on that host over HTTPS only), bounded in time
    (`deadline` in all; `read_timeout` is kept for callers and caps it too) and size."""
    client = (outbound or OutboundClient(OutboundPolicy())).for_hosts([host_key(url)])
    try:
        resp = client.request("GET", url, headers={"Accept": "application/json"},
                              max_bytes=MAX_JWKS_BYTES, what="the platform key set",
                              deadline_at=time.monotonic() + deadline,
                              https_redirects_only=True, read_timeout=read_timeout)
    except OutboundTooLarge as exc:
        raise PlatformKeysUnavailable(
            f"The platform key set at {summary(url)} is larger than 512 KiB.") from exc
    except OutboundTimeout as exc:
        raise PlatformKeysUnavailable(
            f"The platform key set at {summary(url)} did not arrive within {deadline:g} s."
        ) from exc
    except OutboundError as exc:
        raise PlatformKeysUnavailable(
            f"The tool did not fetch the platform key set at {summary(url)}: {exc.message}"
        ) from exc
    except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
        raise PlatformKeysUnavailable(
            f"The platform key set at {summary(url)} did not answer within {read_timeout:g} s "
            "(timeout).") from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise PlatformKeysUnavailable(
            f"The platform key set at {summary(url)} could not be fetched "
            f"({type(exc).__name__}).") from exc
    if resp.status_code != 200:
        log_error_body("platform key set", resp)
        raise PlatformKeysUnavailable(
            f"The platform key set at {summary(url)} answered HTTP {resp.status_code}.")
    try:
        document = json.loads(resp.content)
    except ValueError as exc:
        raise PlatformKeysUnavailable(f"The platform key set at {summary(url)} is not JSON."
                                      ) from exc
    return check_jwks(document, url)


def check_jwks(document: object, where: str) -> dict:
    """A JWKS must be an object whose `keys` is a list of objects."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not all(
        isinstance(k, dict) for k in document["keys"]
    ):
        raise PlatformKeysUnavailable(f"The platform key set at {where} is not a JWKS document.")
    return document


def find_key(jwks: dict, kid: str | None) -> dict | None:
    """The JWK named `kid`; without a kid, the only RSA key of a one-key set."""
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
    if kid is None:
        rsa = [k for k in keys if k.get("kty") == "RSA"]
        return rsa[0] if len(rsa) == 1 else None
    return next((k for k in keys if k.get("kid") == kid), None)


@dataclass
class _Entry:
    """The last fetch of one URL: its key set (or why it failed) and when it was attempted."""

    jwks: dict | None
    attempted_at: float  # the cooldown counts from here
    fetched_at: float = 0.0  # when `jwks` arrived; the TTL counts from here
    error: PlatformKeysUnavailable | None = None
    missing: dict[str, float] = field(default_factory=dict)  # kid -> when a refetch missed it


class JwksCache:
    """Per-process cache of platform key sets, keyed by URL; safe to share between threads."""

    def __init__(self, fetch: Fetcher = fetch_jwks, ttl: float = 3600.0,
                 cooldown: float = 10.0, kid_retry: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, rekey_age: float = 60.0) -> None:
        self._fetch = fetch
        self._rekey_age = rekey_age
        self._kid_retry = kid_retry
        self._clock = clock
        self._ttl = ttl
        self._cooldown = cooldown
        self._entries: dict[str, _Entry] = {}
        self._url_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _entry(self, url: str) -> _Entry | None:
        with self._lock:
            return self._entries.get(url)

    def _url_lock(self, url: str) -> threading.Lock:
        with self._lock:
            return self._url_locks.setdefault(url, threading.Lock())

    def _usable(self, entry: _Entry | None, now: float) -> bool:
        return entry is not None and entry.jwks is not None and (
            now - entry.fetched_at <= self._ttl)

    def _fetch_entry(self, url: str, previous: _Entry | None, kid: str | None) -> _Entry:
        """Fetch `url` now and store the outcome; a failure is stored and raised."""
        now = self._clock()
        try:
            jwks = self._fetch(url)
        except PlatformKeysUnavailable as exc:
            if previous is not None and previous.jwks is not None and self._usable(previous, now):
                # A refetch for an unknown kid failed: keep the keys we have, wait the cooldown.
                kept = _Entry(previous.jwks, now, previous.fetched_at,
                              missing=dict(previous.missing))
                if kid is not None:
                    kept.missing[kid] = now
                self._store(url, kept)
            else:
                self._store(url, _Entry(None, now, error=exc))
            raise
        missing = previous.missing if previous is not None and kid is not None else {}
        entry = _Entry(jwks, now, now, missing={
            k: at for k, at in missing.items() if find_key(jwks, k) is None})
        self._store(url, entry)
        return entry

    def _store(self, url: str, entry: _Entry) -> None:
        if len(entry.missing) > MAX_MISSING_KIDS:
            entry.missing.clear()
        with self._lock:
            self._entries[url] = entry

    def _failure(self, url: str, entry: _Entry, now: float) -> PlatformKeysUnavailable:
        assert entry.error is not None
        wait = max(0.0, self._cooldown - (now - entry.attempted_at))
        return PlatformKeysUnavailable(f"{entry.error.message} The tool tries again in "
                                       f"{wait:.0f} s.")

    def key(self, url: str, kid: str | None) -> dict | None:
        """The platform key for `kid`, refetching (rate-limited) when it is unknown."""
        now = self._clock()
        entry = self._entry(url)
        if self._usable(entry, now):
            assert entry is not None and entry.jwks is not None
            found = find_key(entry.jwks, kid)
            if found is not None or kid is None or (
                now - entry.missing.get(kid, -math.inf) < self._kid_retry
            ) or now - entry.attempted_at < self._cooldown:
                return found
        elif entry is not None and entry.error is not None and (
            now - entry.attempted_at < self._cooldown
        ):
            raise self._failure(url, entry, now)
        with self._url_lock(url):  # one fetch per URL at a time; waiters reuse its result
            now = self._clock()
            current = self._entry(url)
            if current is not entry:  # another request fetched while this one waited
                if current is not None and current.jwks is None:
                    raise self._failure(url, current, now)
                assert current is not None and current.jwks is not None
                return find_key(current.jwks, kid)
            refetch = self._usable(entry, now)
            fetched = self._fetch_entry(url, entry if refetch else None, kid if refetch else None)
            assert fetched.jwks is not None
            found = find_key(fetched.jwks, kid)
            if found is None and refetch and kid is not None:
                fetched.missing[kid] = now
            return found

    def refresh_after_failure(self, url: str, kid: str | None) -> dict | None:
        """After a signature failed with the cached key for `kid`: refetch once if that key
        set is older than `rekey_age`, and return the key now published for `kid` (None when
        there is no fresher key to try: the set is young, the fetch failed, or the kid is gone).
        """
        entry = self._entry(url)
        now = self._clock()
        if entry is None or entry.jwks is None or now - entry.fetched_at < self._rekey_age \
                or now - entry.attempted_at < self._cooldown:
            return None
        with self._url_lock(url):
            current = self._entry(url)
            if current is not entry:  # another request refetched while this one waited
                if current is None or current.jwks is None:
                    return None
                return find_key(current.jwks, kid)
            try:
                fetched = self._fetch_entry(url, entry, None)
            except PlatformKeysUnavailable:
                return None  # the old keys stay; the signature failure stands
            assert fetched.jwks is not None
            return find_key(fetched.jwks, kid)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
