"""LTI Assignment and Grade Services 2.0: line items, results, scores.

AGS shows only the tool's own line items (Moodle and Canvas alike); the rest of a gradebook
comes from `moodle_ws` or `canvas_rest`. Line item URLs may carry a query (Moodle:
`?type_id=1`), so `/scores` and `/results` are added to the path, before the query.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lti_tool.lms.http import LmsBadReply, LmsPermissionError, expect_ok
from lti_tool.lms.service import BearerClient, with_query
from lti_tool.lms.timeparse import parse_timestamp_text

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"

LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"


def service_url(lineitem_url: str, suffix: str) -> str:
    """`.../lineitem?type_id=1` + `scores` -> `.../lineitem/scores?type_id=1`."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + suffix.strip("/")))


def to_decimal(value: Any) -> Decimal | None:
    """A number from an LMS reply (int, float or numeric string); None when not a number."""
    if type(value) is int and -_EXACT_INT < value < _EXACT_INT:
        return Decimal(value)  # the same Decimal as from its text, without the text
    if type(value) is float and value:
        # A gradebook repeats a few marks thousands of times: each float is read from its
        # text once (not 0.0: -0.0 equals it but is written as it came).
        try:
            return _FLOATS[value]
        except KeyError:  # (a get-then-index could race another thread's clear)
            pass
        if len(_FLOATS) >= _FLOATS_KEPT:
            _FLOATS.clear()
        number = _FLOATS[value] = _from_text(value)
        return number
    if value is None or isinstance(value, bool):
        return None
    return _from_text(value)


def _from_text(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


_FLOATS: dict[float, Decimal | None] = {}
_FLOATS_KEPT = 4096


# Ints below this in size take `to_decimal`'s short way (longer ones are read as text, which
# refuses the very long ones as before).
_EXACT_INT = 10**18


@dataclass(frozen=True)
class LineItem:
    id: str
    label: str
    score_maximum: Decimal | None
    resource_link_id: str | None
    resource_id: str | None
    tag: str | None

    @classmethod
    def from_json(cls, data: Any) -> LineItem | None:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            return None

        def text(name: str) -> str | None:
            value = data.get(name)
            return str(value) if value not in (None, "") else None

        return cls(
            id=data["id"],
            label=str(data.get("label") or "")[:500],
            score_maximum=to_decimal(data.get("scoreMaximum")),
            resource_link_id=text("resourceLinkId"),
            resource_id=text("resourceId"),
            tag=text("tag"),
        )


# An AGS result's user field and its mark's three fields (score, maximum, timestamp), in the
# order `result_values` reads them.
RESULT_USER = "userId"
RESULT_MARK_FIELDS = ("resultScore", "resultMaximum", "timestamp")


def result_values(score: Any, maximum: Any, timestamp: Any
                  ) -> tuple[Decimal | None, Decimal | None, datetime | None]:
    """An AGS result's mark fields as they came read as (score, maximum, timestamp)."""
    return to_decimal(score), to_decimal(maximum), parse_timestamp_text(timestamp)


def result_fields(data: Any) -> tuple[str, Decimal | None, Decimal | None, datetime | None
                                      ] | None:
    """(user id, score, maximum, timestamp) of one AGS result, None when it names nobody: what
    `Result.from_json` reads, without building a Result (the sync reads a result per learner
    and item)."""
    if not isinstance(data, dict):
        return None
    user = data.get(RESULT_USER)
    if user is None or user == "":
        return None
    score, maximum, timestamp = RESULT_MARK_FIELDS
    return (str(user), *result_values(data.get(score), data.get(maximum), data.get(timestamp)))


@dataclass(frozen=True)
class Result:
    user_id: str
    score: Decimal | None
    maximum: Decimal | None
    timestamp: datetime | None
    comment: str | None

    @classmethod
    def from_json(cls, data: Any) -> Result | None:
        fields = result_fields(data)
        if fields is None:
            return None
        comment = data.get("comment")
        return cls(*fields, comment=comment if isinstance(comment, str) else None)


def require_scope(granted: Iterable[str], *acceptable: str, action: str) -> str:
    """The first acceptable scope the launch granted, or a clear refusal before any request."""
    granted_set = set(granted or ())
    for scope in acceptable:
        if scope in granted_set:
            return scope
    raise LmsPermissionError(
        f"The LMS did not grant the tool the AGS scope needed to {action} "
        f"({acceptable[0].rsplit('/', 1)[-1]}). Enable 'Assignment and Grade Services' for the "
        "tool in the LMS, then open the tool from the course again."
    )


class AgsClient:
    """AGS for one context, limited to the scopes its latest launch granted."""

    def __init__(self, client: BearerClient, granted_scopes: Iterable[str]) -> None:
        self.client = client
        self.granted = list(granted_scopes or ())

    def line_items(
        self,
        lineitems_url: str,
        *,
        resource_link_id: str | None = None,
        tag: str | None = None,
        resource_id: str | None = None,
        limit: int | None = None,
    ) -> Iterator[LineItem]:
        """Every line item on every page, optionally filtered by resource link, tag, resource."""
        scope = require_scope(self.granted, SCOPE_LINEITEM_READONLY, SCOPE_LINEITEM,
                              action="read the line items")
        url = with_query(lineitems_url, resource_link_id=resource_link_id, tag=tag,
                         resource_id=resource_id, limit=limit)
        for body, _response in self.client.pages(url, [scope], accept=LINEITEM_CONTAINER,
                                                 needed=scope, what="the AGS line items"):
            if not isinstance(body, list):
                raise LmsBadReply("The AGS line item container is not a JSON list.")
            for entry in body:
                item = LineItem.from_json(entry)
                if item is None:
                    continue
                # Some LMSs ignore the filters; apply them here too.
                if resource_link_id is not None and item.resource_link_id != resource_link_id:
                    continue
                if tag is not None and item.tag != tag:
                    continue
                if resource_id is not None and item.resource_id != resource_id:
                    continue
                yield item

    def result_pages(self, lineitem_url: str, *, limit: int | None = None,
                     user_id: str | None = None) -> Iterator[list[Result]]:
        """The results of one line item, one list per page (so callers can write per page)."""
        scope = require_scope(self.granted, SCOPE_RESULT_READONLY, action="read the results")
        url = with_query(service_url(lineitem_url, "results"), limit=limit, user_id=user_id)
        for body in self.result_bodies(url, scope):
            yield [r for r in (Result.from_json(entry) for entry in body) if r is not None]

    def result_bodies(self, url: str, scope: str) -> Iterator[list[Any]]:
        """The pages of a result container as the LMS sent them (JSON lists, entries unread:
        `result_fields` reads them)."""
        for body, _response in self.client.pages(url, [scope], accept=RESULT_CONTAINER,
                                                 needed=scope, what="the AGS results"):
            if not isinstance(body, list):
                raise LmsBadReply("The AGS result container is not a JSON list.")
            yield body

    def result_body_pages(self, lineitem_url: str, *, limit: int | None = None
                          ) -> Iterator[list[Any]]:
        """`result_pages` as the LMS sent them (entries unread: the sync reads them with
        `result_fields`, or compares their raw fields first)."""
        scope = require_scope(self.granted, SCOPE_RESULT_READONLY, action="read the results")
        yield from self.result_bodies(with_query(service_url(lineitem_url, "results"),
                                                 limit=limit), scope)

    def results(self, lineitem_url: str, **kwargs: Any) -> Iterator[Result]:
        for page in self.result_pages(lineitem_url, **kwargs):
            yield from page

    def post_score(self, lineitem_url: str, score: dict) -> dict:
        """Post one score; Moodle answers 200 with an empty body, Canvas with JSON."""
        scope = require_scope(self.granted, SCOPE_SCORE, action="send scores")
        response = self.client.send(
            "POST", service_url(lineitem_url, "scores"), [scope], accept="application/json",
            needed=scope, json=score, headers={"Content-Type": SCORE}, idempotent=True,
        )
        expect_ok(response, "the score")
        if not response.content.strip():
            return {}
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
