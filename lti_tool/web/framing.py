"""Who may frame the tool's pages: `frame-ancestors` from the registrations' platform origins.

A page that belongs to one registration (a session's pages, the login and launch of one
platform) may be framed only by that platform: the origins of its issuer and its OIDC
`auth_login_url`, plus the LMS hosts recorded for it. Any other page (errors before the
platform is known, public pages) may be framed by any registered platform, so an LMS never
shows a blank frame where the tool has something to say, and no other site can frame it.
`X-Frame-Options` says the same where it can: DENY when nobody may frame the page; it is left
out when platforms may, because it cannot name several origins (browsers that know CSP use
`frame-ancestors` and ignore it).
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.store.models.core import Platform

UNION_TTL = 30.0
_union: tuple[float, tuple[str, ...]] | None = None
_union_lock = threading.Lock()


def origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, or None."""
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}"


def platform_origins(platform: Platform) -> list[str]:
    """The origins that may frame this registration's pages."""
    found: list[str] = []
    for url in (platform.issuer, platform.auth_login_url):
        origin = origin_of(url)
        if origin and origin not in found:
            found.append(origin)
    return found


def _all_origins(db: Session) -> tuple[str, ...]:
    """Every registration's origins (cached for a few seconds per process)."""
    global _union
    now = time.monotonic()
    with _union_lock:
        if _union is not None and now - _union[0] < UNION_TTL:
            return _union[1]
    origins: list[str] = []
    for platform in db.scalars(select(Platform)):
        origins.extend(o for o in platform_origins(platform) if o not in origins)
    with _union_lock:
        _union = (now, tuple(origins))
    return tuple(origins)


def forget_cached_origins() -> None:
    global _union
    with _union_lock:
        _union = None


def frame_headers(db: Session, platform_id: int | None) -> dict[str, str]:
    """The Content-Security-Policy frame-ancestors (and X-Frame-Options) for a response."""
    platform = db.get(Platform, platform_id) if platform_id is not None else None
    origins = platform_origins(platform) if platform is not None else list(_all_origins(db))
    if not origins:
        return {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}
    return {"Content-Security-Policy": "frame-ancestors 'self' " + " ".join(origins)}
