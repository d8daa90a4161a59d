"""Platform public keys: fetched from the platform's JWKS URL, cached per process.

A launch whose `kid` is not in the cached set triggers one refetch (the platform rotated its
key), but at most once per `cooldown` seconds per URL, so a flood of forged kids cannot turn the
tool into a request amplifier against the LMS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from lti_tool.errors import LaunchError

MAX_JWKS_BYTES = 512 * 1024
FETCH_TIMEOUT = (3.05, 5)

Fetcher = Callable[[str], dict]


class PlatformKeysUnavailable(LaunchError):
    """The platform's key set could not be fetched: the LMS side is at fault, not the browser."""

    status = 502
    code = "platform_keys_unavailable"


def fetch_jwks(url: str) -> dict:
    """GET a JWKS document, bounded in time and size, and check its shape."""
    try:
        with requests.get(url, timeout=FETCH_TIMEOUT, stream=True,
                          headers={"Accept": "application/json"}) as resp:
            if resp.status_code != 200:
                raise PlatformKeysUnavailable(
                    f"The platform key set at {url} answered HTTP {resp.status_code}.")
            body = resp.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise PlatformKeysUnavailable(
            f"The platform key set at {url} could not be fetched ({type(exc).__name__}).") from exc
    if len(body) > MAX_JWKS_BYTES:
        raise PlatformKeysUnavailable(f"The platform key set at {url} is larger than 512 KiB.")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise PlatformKeysUnavailable(f"The platform key set at {url} is not JSON.") from exc
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
    jwks: dict
    fetched_at: float


class JwksCache:
    """Per-process cache of platform key sets, keyed by URL; safe to share between threads."""

    def __init__(self, fetch: Fetcher = fetch_jwks, ttl: float = 3600.0,
                 cooldown: float = 10.0) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._cooldown = cooldown
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _refresh(self, url: str) -> _Entry:
        entry = _Entry(self._fetch(url), time.monotonic())
        with self._lock:
            self._entries[url] = entry
        return entry

    def key(self, url: str, kid: str | None) -> dict | None:
        """The platform key for `kid`, refetching once when it is unknown."""
        with self._lock:
            entry = self._entries.get(url)
        fresh = entry is None or time.monotonic() - entry.fetched_at > self._ttl
        if fresh:
            entry = self._refresh(url)
        assert entry is not None
        found = find_key(entry.jwks, kid)
        if found is None and not fresh and time.monotonic() - entry.fetched_at >= self._cooldown:
            found = find_key(self._refresh(url).jwks, kid)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
