"""One gradebook-source interface for the sync, with one implementation per LMS service.

The sync asks a source for its items (and rubric criteria), then consumes score batches. A
batch is small (one page), so a course of thousands of learners never sits in memory at once,
and it says which items are now complete, so the sync can clear grades the LMS removed.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.domain import lms as lms_rules
from lti_tool.lms.ags import (
    RESULT_MARK_FIELDS,
    RESULT_USER,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    AgsClient,
    result_fields,
    result_values,
    to_decimal,
)
from lti_tool.lms.canvas_rest import CanvasRest
from lti_tool.lms.http import LmsError, LmsHttp, LmsUnavailable
from lti_tool.lms.moodle_ws import MoodleNothingToReport, MoodleWs
from lti_tool.lms.nrps import SCOPE_MEMBERSHIP, NrpsClient
from lti_tool.lms.service import BearerClient
from lti_tool.lms.timeparse import parse_timestamp
from lti_tool.lms.token import ServiceTokens
from lti_tool.secrets import unseal
from lti_tool.settings import Settings
from lti_tool.store.models.core import Context, Platform, ResourceLink


@dataclass(frozen=True)
class ItemRecord:
    external_id: str
    label: str
    maximum: Decimal | None
    kind: str = "item"
    category: str = ""
    resource_link_id: str | None = None
    tag: str | None = None
    activity_id: str | None = None
    lms_updated_at: datetime | None = None


class ScoreRecord(NamedTuple):
    """One learner's mark on one item as a source read it (a tuple: one per learner and item,
    so it must be cheap to make)."""

    item_external_id: str
    user_sub: str
    score: Decimal | None
    maximum: Decimal | None
    lms_updated_at: datetime | None


@dataclass(frozen=True)
class CriterionRecord:
    item_external_id: str
    external_id: str
    description: str
    max_points: Decimal | None
    levels: tuple[tuple[str, str, str], ...]  # (id, points, description), lowest first
    sort_order: int = 0


@dataclass(frozen=True)
class AssessmentRecord:
    item_external_id: str
    criterion_external_id: str
    user_sub: str
    points: Decimal | None
    level_id: str | None
    lms_updated_at: datetime | None


class RawScores(NamedTuple):
    """One page of an item's marks as the LMS sent them, entries unread.

    The writer compares each entry's raw fields with the stored mark first and reads only the
    entries it cannot tell unchanged that way (`Writer.raw_scores`); `read` is the general
    reading of one entry, `values` the reading of the mark's three raw fields (`fields`, in
    the order score, maximum, timestamp) as `read` applies it. An entry's learner is its
    `user_field`; when that is a string, it is the sub `read` gives the entry.
    """

    item_external_id: str
    entries: list[Any]
    user_field: str
    fields: tuple[str, str, str]
    read: Callable[[Any], ScoreRecord | None]
    values: Callable[[Any, Any, Any], tuple[Decimal | None, Decimal | None, datetime | None]]


@dataclass
class ScoreBatch:
    scores: list[ScoreRecord] = field(default_factory=list)
    # A page of raw marks the writer reads itself (`RawScores`), beside or instead of `scores`.
    raw: RawScores | None = None
    assessments: list[AssessmentRecord] = field(default_factory=list)
    # Items whose every score has now been delivered (absent learners have no grade).
    complete_items: frozenset[str] = frozenset()


class GradebookSource(ABC):
    """What the sync needs from an LMS service."""

    name: str = ""
    # True when `batches(since)` can skip what did not change since `since`.
    supports_since: bool = False

    @abstractmethod
    def items(self) -> list[ItemRecord]:
        """Every item the service lists for the course (a complete list)."""

    def criteria(self) -> list[CriterionRecord]:
        """LMS rubric criteria of the items (call after `items`)."""
        return []

    @abstractmethod
    def batches(self, since: datetime | None) -> Iterator[ScoreBatch]:
        """Scores (and rubric assessments) in small batches."""

    @property
    def warnings(self) -> list[str]:
        """Parts of this source that could not be read this time, in words an admin can act on
        (the sync shows them; the rest of the source was read)."""
        return list(self.__dict__.get("_warnings", ()))

    def optional(self, call: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Run a call for an optional part (categories, rubrics, competencies): a refusal or an
        unreadable reply becomes a warning and an empty list; "nothing to report" is no warning; an
        LMS that is down still fails the source (the next sync tries again)."""
        try:
            return call()
        except MoodleNothingToReport:
            return []
        except LmsUnavailable:
            raise
        except LmsError as exc:
            self.__dict__.setdefault("_warnings", []).append(exc.message)
            return []


class AgsSource(GradebookSource):
    """The tool's own line items and their results (AGS lists nothing else)."""

    name = "ags"

    def __init__(self, client: AgsClient, lineitems_url: str, page_limit: int | None = None
                 ) -> None:
        self.client = client
        self.lineitems_url = lineitems_url
        self.page_limit = page_limit
        self._items: list[ItemRecord] = []

    def items(self) -> list[ItemRecord]:
        self._items = [
            ItemRecord(external_id=li.id, label=li.label, maximum=li.score_maximum,
                       resource_link_id=li.resource_link_id, tag=li.tag,
                       activity_id=li.resource_id)
            for li in self.client.line_items(self.lineitems_url, limit=self.page_limit)
        ]
        return self._items

    def batches(self, since: datetime | None) -> Iterator[ScoreBatch]:
        for item in self._items:
            read, values = _result_reading(item.external_id, item.maximum)
            for page in self.client.result_body_pages(item.external_id,
                                                      limit=self.page_limit):
                yield ScoreBatch(raw=RawScores(item.external_id, page, RESULT_USER,
                                               RESULT_MARK_FIELDS, read, values))
            yield ScoreBatch(complete_items=frozenset({item.external_id}))


def _result_reading(key: str, default: Decimal | None
                    ) -> tuple[Callable[[Any], ScoreRecord | None],
                               Callable[[Any, Any, Any], tuple[Decimal | None, Decimal | None,
                                                               datetime | None]]]:
    """How an AGS result of line item `key` is read (`RawScores.read`, `RawScores.values`): a
    result without a maximum has the line item's."""

    def values(score: Any, maximum: Any, timestamp: Any
               ) -> tuple[Decimal | None, Decimal | None, datetime | None]:
        number, most, at = result_values(score, maximum, timestamp)
        return number, default if most is None else most, at

    def read(entry: Any) -> ScoreRecord | None:
        fields = result_fields(entry)
        if fields is None:
            return None
        user, number, most, at = fields
        return ScoreRecord(key, user, number, default if most is None else most, at)

    return read, values


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _dicts(value: Any) -> list[dict]:
    """The objects of a JSON list from the LMS (anything else in it is ignored)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int) -> int:
    """A small int for an Integer column (LMS values can be anything)."""
    return max(-(2**31), min(2**31 - 1, value)) if type(value) is int else default


class MoodleWsSource(GradebookSource):
    """The whole Moodle gradebook, advanced-grading rubrics and course competencies."""

    name = "moodle_ws"
    supports_since = True  # rubric instances only; grades are always read in full

    def __init__(self, ws: MoodleWs, course_id: str) -> None:
        self.ws = ws
        self.course_id = course_id
        self._usergrades: list[dict] = []
        self._items: list[ItemRecord] = []
        self._assign_of_item: dict[str, int] = {}
        self._definitions: list[tuple[str, dict]] = []

    def items(self) -> list[ItemRecord]:
        self._usergrades = self.ws.user_grade_items(self.course_id)
        categories = {_text(g.get("id")): _text(g.get("category"))
                      for g in _dicts(self.optional(
                          lambda: self.ws.grade_items(self.course_id)))}
        seen: dict[str, ItemRecord] = {}
        for user in _dicts(self._usergrades):
            for gi in _dicts(user.get("gradeitems")):
                if gi.get("itemtype") in ("course", "category"):
                    continue
                item_id = _text(gi.get("id"))
                if not item_id or item_id in seen:
                    continue
                cmid = gi.get("cmid")
                seen[item_id] = ItemRecord(
                    external_id=item_id, label=_text(gi.get("itemname"))[:500],
                    maximum=to_decimal(gi.get("grademax")),
                    category=categories.get(item_id, "")[:500],
                    activity_id=_text(cmid) if cmid is not None else None,
                )
                if gi.get("itemmodule") == "assign" and type(gi.get("iteminstance")) is int:
                    self._assign_of_item[item_id] = gi["iteminstance"]
        for entry in _dicts(self.optional(
                lambda: self.ws.course_competencies(self.course_id))):
            competency = _obj(entry.get("competency"))
            if competency.get("id") is not None:
                key = f"competency:{competency['id']}"
                seen[key] = ItemRecord(external_id=key, kind="competency", maximum=None,
                                       label=_text(competency.get("shortname"))[:500])
        self._items = list(seen.values())
        return self._items

    def criteria(self) -> list[CriterionRecord]:
        by_cmid = {item.activity_id: item for item in self._items
                   if item.external_id in self._assign_of_item and item.activity_id}
        cmids = [int(cmid) for cmid in by_cmid if cmid.isdigit()]
        records: list[CriterionRecord] = []
        self._definitions = []
        for area in _dicts(self.optional(lambda: self.ws.grading_definitions(cmids))):
            item = by_cmid.get(_text(area.get("cmid")))
            # Only the area's active method counts (an inactive rubric may still be defined).
            if item is None or area.get("activemethod") != "rubric":
                continue
            for definition in _dicts(area.get("definitions")):
                if definition.get("method") != "rubric" or type(definition.get("id")) is not int:
                    continue
                self._definitions.append((item.external_id, definition))
                rubric = _obj(definition.get("rubric"))
                for order, criterion in enumerate(_dicts(rubric.get("rubric_criteria"))):
                    levels = sorted(
                        ((_text(lv.get("id")), _text(lv.get("score")), _text(lv.get("definition")))
                         for lv in _dicts(criterion.get("levels"))),
                        key=lambda lv: to_decimal(lv[1]) or Decimal(0),
                    )
                    points = [to_decimal(lv[1]) for lv in levels]
                    records.append(CriterionRecord(
                        item_external_id=item.external_id,
                        external_id=_text(criterion.get("id")),
                        description=_text(criterion.get("description")),
                        max_points=max((p for p in points if p is not None), default=None),
                        levels=tuple(levels),
                        sort_order=_int(criterion.get("sortorder"), order),
                    ))
        return records

    def batches(self, since: datetime | None) -> Iterator[ScoreBatch]:
        scores = []
        for user in _dicts(self._usergrades):
            if user.get("userid") is None:
                continue
            sub = _text(user["userid"])
            for gi in _dicts(user.get("gradeitems")):
                if gi.get("itemtype") in ("course", "category"):
                    continue
                scores.append(ScoreRecord(
                    _text(gi.get("id")), sub, to_decimal(gi.get("graderaw")),
                    to_decimal(gi.get("grademax")), parse_timestamp(gi.get("gradedategraded")),
                ))
        complete = frozenset(i.external_id for i in self._items if i.kind == "item")
        yield ScoreBatch(scores=scores, complete_items=complete)
        yield ScoreBatch(assessments=self._assessments(since))

    def _assessments(self, since: datetime | None) -> list[AssessmentRecord]:
        if not self._definitions:
            return []
        stamp = int(since.timestamp()) if since else 0
        assignments = {self._assign_of_item[item_id] for item_id, _ in self._definitions}
        # A rubric instance names the assign_grades row it fills, not the learner.
        learner_of_grade: dict[str, str] = {}
        for assignment in _dicts(self.optional(lambda: self.ws.assign_grades(assignments))):
            for grade in _dicts(assignment.get("grades")):
                if grade.get("userid") is not None:
                    learner_of_grade[_text(grade.get("id"))] = _text(grade["userid"])
        records: list[AssessmentRecord] = []
        for item_id, definition in self._definitions:
            rubric = _obj(definition.get("rubric"))
            level_points = {
                _text(lv.get("id")): to_decimal(lv.get("score"))
                for criterion in _dicts(rubric.get("rubric_criteria"))
                for lv in _dicts(criterion.get("levels"))
            }
            definition_id = definition["id"]
            for instance in _dicts(self.optional(
                    partial(self.ws.gradingform_instances, definition_id, stamp))):
                sub = learner_of_grade.get(_text(instance.get("itemid")))
                if sub is None:
                    continue
                for chosen in _dicts(_obj(instance.get("rubric")).get("criteria")):
                    level = _text(chosen.get("levelid")) or None
                    records.append(AssessmentRecord(
                        item_id, _text(chosen.get("criterionid")), sub,
                        level_points.get(level or ""), level,
                        parse_timestamp(instance.get("timemodified")),
                    ))
        return records


class CanvasSource(GradebookSource):
    """Canvas assignments, submissions with rubric assessments, and Outcomes results."""

    name = "canvas"
    supports_since = True

    def __init__(self, rest: CanvasRest, course_id: str) -> None:
        self.rest = rest
        self.course_id = course_id
        self._subs: dict[str, str] = {}
        self._criteria: list[CriterionRecord] = []
        self._outcome_scores: list[ScoreRecord] = []

    def _sub_of(self, canvas_user_id: Any) -> str | None:
        return self._subs.get(_text(canvas_user_id))

    def items(self) -> list[ItemRecord]:
        for user in _dicts(list(self.rest.users(self.course_id))):
            sub = user.get("lti_id") or user.get("uuid")
            if sub and user.get("id") is not None:
                self._subs[_text(user["id"])] = _text(sub)
        items: list[ItemRecord] = []
        self._criteria = []
        for assignment in _dicts(list(self.rest.assignments(self.course_id))):
            if assignment.get("id") is None:
                continue
            key = _text(assignment["id"])
            items.append(ItemRecord(
                external_id=key, label=_text(assignment.get("name"))[:500],
                maximum=to_decimal(assignment.get("points_possible")), activity_id=key,
                lms_updated_at=parse_timestamp(assignment.get("updated_at")),
            ))
            for order, criterion in enumerate(_dicts(assignment.get("rubric"))):
                if criterion.get("id") is None:
                    continue
                levels = sorted(
                    ((_text(r.get("id")), _text(r.get("points")), _text(r.get("description")))
                     for r in _dicts(criterion.get("ratings"))),
                    key=lambda lv: to_decimal(lv[1]) or Decimal(0),
                )
                self._criteria.append(CriterionRecord(
                    key, _text(criterion["id"]), _text(criterion.get("description")),
                    to_decimal(criterion.get("points")), tuple(levels), order))
        results, outcomes = self.rest.outcome_results(self.course_id)
        for outcome_id, outcome in _obj(outcomes).items():
            if not isinstance(outcome, dict):
                continue
            items.append(ItemRecord(
                external_id=f"outcome:{outcome_id}", kind="outcome",
                label=_text(outcome.get("title"))[:500],
                maximum=to_decimal(outcome.get("points_possible")),
            ))
        self._outcome_scores = []
        for result in _dicts(results):
            links = _obj(result.get("links"))
            sub = self._sub_of(links.get("user"))
            if sub is None or links.get("learning_outcome") is None:
                continue
            self._outcome_scores.append(ScoreRecord(
                f"outcome:{_text(links['learning_outcome'])}", sub,
                to_decimal(result.get("score")), to_decimal(result.get("possible")),
                parse_timestamp(result.get("submitted_or_assessed_at")),
            ))
        return items

    def criteria(self) -> list[CriterionRecord]:
        return self._criteria

    def batches(self, since: datetime | None) -> Iterator[ScoreBatch]:
        for page in self.rest.submission_pages(self.course_id, graded_since=since):
            batch = ScoreBatch()
            for submission in _dicts(page):
                sub = self._sub_of(submission.get("user_id"))
                item = _text(submission.get("assignment_id"))
                if sub is None or not item:
                    continue
                graded = parse_timestamp(submission.get("graded_at"))
                batch.scores.append(ScoreRecord(item, sub, to_decimal(submission.get("score")),
                                                None, graded))
                for criterion_id, filled in _obj(submission.get("rubric_assessment")).items():
                    if isinstance(filled, dict):
                        batch.assessments.append(AssessmentRecord(
                            item, _text(criterion_id), sub, to_decimal(filled.get("points")),
                            _text(filled.get("rating_id")) or None, graded))
            yield batch
        yield ScoreBatch(scores=self._outcome_scores)


_CANVAS_COURSE = re.compile(r"/courses/(\d+)(?:/|$)")


def canvas_course_id(db: Session, context: Context) -> str | None:
    """Canvas's numeric course id: the launch's custom `canvas_course_id`, else the AGS URL."""
    for custom in db.scalars(select(ResourceLink.custom).where(
            ResourceLink.context_id == context.id)):
        if isinstance(custom, dict) and str(custom.get("canvas_course_id", "")).isdigit():
            return str(custom["canvas_course_id"])
    for url in (context.ags_lineitems_url, context.nrps_url):
        match = _CANVAS_COURSE.search(url or "")
        if match:
            return match.group(1)
    return None


def ags_usable(context: Context) -> bool:
    scopes = set(context.ags_scopes or ())
    return bool(context.ags_lineitems_url) and SCOPE_RESULT_READONLY in scopes and bool(
        scopes & {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY})


def rest_base_url(platform: Platform) -> str | None:
    """The registration's REST base URL (`domain.lms.rest_base_url`)."""
    return lms_rules.rest_base_url(platform.lms_kind, platform.issuer, platform.rest_base_url)


def sources_for(
    db: Session, settings: Settings, context: Context, http: LmsHttp,
    *, page_limit: int | None = None,
) -> tuple[list[GradebookSource], NrpsClient | None]:
    """The gradebook sources a context can use, and the roster client when NRPS was granted."""
    platform = db.get(Platform, context.platform_id)
    if platform is None:
        return [], None
    granted = set(context.ags_scopes or ()) & {
        SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY}
    if context.nrps_url:
        granted.add(SCOPE_MEMBERSHIP)
    # Every call of this context's sync reaches only the registration's recorded hosts.
    http = http.for_platform(platform)
    bearer = BearerClient(http, ServiceTokens(db, settings, platform, http), granted)
    sources: list[GradebookSource] = []
    if ags_usable(context):
        sources.append(AgsSource(AgsClient(bearer, context.ags_scopes),
                                 context.ags_lineitems_url or "", page_limit))
    rest_token = unseal(settings, platform.rest_token)  # sealed at rest (lti_tool.secrets)
    rest_base = rest_base_url(platform)
    if rest_base and rest_token:
        if platform.lms_kind == "moodle":
            sources.append(MoodleWsSource(
                MoodleWs(http, rest_base, rest_token), context.context_id))
        elif platform.lms_kind == "canvas":
            course = canvas_course_id(db, context)
            if course:
                sources.append(CanvasSource(
                    CanvasRest(http, rest_base, rest_token), course))
    nrps = NrpsClient(bearer) if context.nrps_url else None
    return sources, nrps
