"""A tolerant parser for HTTP `Link` headers (RFC 8288) as real LMSs send them.

Moodle's AGS line-item container sends `rel=“next”` with typographic quotes (which reach us as
UTF-8 bytes decoded as Latin-1, i.e. `â\\x80\\x9c`) and HTML-escaped `&amp;` inside the URL, so a
strict parser finds no `next` link and a tool silently reads only the first page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

# Every kind of quote a rel value has been seen wrapped in, including the mojibake forms.
_QUOTES = "\"'“”‘’«»" + "\u00e2\u0080\u009c\u009d\u0098\u0099"
_LINK = re.compile(r"<([^<>]*)>([^<]*)")
_REL = re.compile(r"(?i)(?:^|;)\s*rel\s*=\s*([^;]*)")


def _clean_rel(raw: str) -> list[str]:
    value = raw.strip().strip(_QUOTES + " \t,").strip()
    # `rel="next last"` names several relations at once.
    return [part.strip(_QUOTES).lower() for part in value.split() if part.strip(_QUOTES)]


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map each relation (lower case) to its URL; the first occurrence of a relation wins.

    Never raises: anything that is not recognisable as `<url>; rel=...` is ignored.
    """
    links: dict[str, str] = {}
    if not value or not isinstance(value, str):
        return links
    for match in _LINK.finditer(value):
        url = html.unescape(match.group(1).strip())
        if not url:
            continue
        rel_match = _REL.search(match.group(2))
        if rel_match is None:
            continue
        for rel in _clean_rel(rel_match.group(1)):
            links.setdefault(rel, url)
    return links


def next_link(headers: Mapping[str, str]) -> str | None:
    """The `next` page URL from a response's headers, or None on the last page."""
    return parse_link_header(headers.get("Link") or headers.get("link")).get("next")
