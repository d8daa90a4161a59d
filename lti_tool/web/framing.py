"""Who may frame the tool's pages: `frame-ancestors` from the registrations' platform origins.

A page that belongs to one registration (a session's pages, the login and launch of one
platform) may be framed only by that platform: the origins of its issuer and its OIDC
`auth_login_url`, plus the LMS hosts recorded for it. A page without a session or a known
registration (a refused login or launch, "no session" and "session expired" answers, public
credential pages) offers nothing to click on anyone's behalf; it may be framed by any
registered platform (at most `UNION_MAX` origins, else only by the tool itself), so an
LMS never shows a blank frame where the tool explains a problem. The `frame_ancestors` setting
adds origins for every page. `X-Frame-Options` says the same where it can: DENY or SAMEORIGIN;
it is left out when platforms may frame the page, because it cannot name several origins
(browsers that know CSP use `frame-ancestors` and ignore it).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.store.models.core import Platform

UNION_MAX = 100


@lru_cache(maxsize=1024)  # pure; every response's frame headers ask it for the same few URLs
def origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, or None."""
    if not url:
        return None
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
    return f"{parsed.scheme}://{host}{f':{port}' if port else ''}"


def _origins(urls: list[str | None]) -> list[str]:
    found: list[str] = []
    for url in urls:
        origin = origin_of(url)
        if origin and origin not in found:
            found.append(origin)
    return found


def platform_origins(platform: Platform) -> list[str]:
    """The origins that may frame this registration's pages."""
    return _origins([platform.issuer, platform.auth_login_url])


def _all_origins(db: Session) -> list[str]:
    rows = db.execute(select(Platform.issuer, Platform.auth_login_url)).all()
    return _origins([url for row in rows for url in row])


def frame_headers(db: Session, platform_id: int | None, extra: str = "",
                  known: Platform | None = None) -> dict[str, str]:
    """The Content-Security-Policy frame-ancestors (and X-Frame-Options) for a response;
    `extra` is the `frame_ancestors` setting (origins allowed for every page); `known` is the
    registration the request already loaded (login, launch), read instead of looked up."""
    if platform_id is not None:
        platform = known if known is not None and known.id == platform_id else db.get(
            Platform, platform_id)
        origins = platform_origins(platform) if platform is not None else []
    else:
        origins = _all_origins(db)
        origins = origins if len(origins) <= UNION_MAX else []
    origins += [o for o in _origins([e.strip() for e in extra.split(",")]) if o not in origins]
    if not origins:
        return {"Content-Security-Policy": "frame-ancestors 'self'",
                "X-Frame-Options": "SAMEORIGIN"}
    return {"Content-Security-Policy": "frame-ancestors 'self' " + " ".join(origins)}
