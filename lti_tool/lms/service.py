"""Bearer-token GETs with `Link: rel="next"` paging, shared by the AGS, NRPS and Canvas clients."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from lti_tool.lms.http import LmsBadReply, LmsHttp, LmsPermissionError, json_body
from lti_tool.lms.links import next_link
from lti_tool.lms.token import ServiceTokens

# A guard against an LMS whose `next` links never end (or loop).
MAX_PAGES = 100_000


def with_query(url: str, **params: Any) -> str:
    """`url` with `params` added to (or replacing in) its query; None values are skipped."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def iter_pages(
    fetch: Callable[[str], requests.Response], url: str, what: str
) -> Iterator[tuple[Any, requests.Response]]:
    """Follow `next` links from `url`, yielding each page's JSON and response.

    Stops at a page without `next`, at a `next` already visited (a loop) or after MAX_PAGES.
    """
    seen: set[str] = set()
    current: str | None = url
    while current and current not in seen and len(seen) < MAX_PAGES:
        seen.add(current)
        response = fetch(current)
        yield json_body(response, what), response
        current = next_link(response.headers)


class BearerClient:
    """GET/POST to LTI Advantage services with a cached token; one refresh on a stale token."""

    def __init__(self, http: LmsHttp, tokens: ServiceTokens,
                 token_scopes: Iterable[str] = ()) -> None:
        self.http = http
        self.tokens = tokens
        # Scopes every token asks for, so one token serves a whole sync (AGS and NRPS alike).
        self.token_scopes = tuple(token_scopes)

    def send(self, method: str, url: str, scopes: Iterable[str], *, accept: str,
             needed: str, **kwargs: Any) -> requests.Response:
        scope_list = tuple(sorted(set(scopes) | set(self.token_scopes)))
        headers = dict(kwargs.pop("headers", {}) or {})
        headers["Accept"] = accept
        for attempt in (1, 2):
            headers["Authorization"] = "Bearer " + self.tokens.token(scope_list)
            try:
                return self.http.request(method, url, headers=headers, needed=needed, **kwargs)
            except LmsPermissionError as exc:
                # A 401 with a cached token may only mean the token expired early: retry once.
                if attempt == 1 and exc.details.get("status") == 401:
                    self.tokens.invalidate(scope_list)
                    continue
                raise
        raise LmsBadReply("unreachable")  # pragma: no cover

    def pages(self, url: str, scopes: Iterable[str], *, accept: str, needed: str,
              what: str) -> Iterator[tuple[Any, requests.Response]]:
        scope_list = tuple(scopes)
        return iter_pages(
            lambda page: self.send("GET", page, scope_list, accept=accept, needed=needed),
            url, what,
        )
