"""AGS against the captured Moodle (and Canvas) shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lti_tool.lms.ags import (
    SCOPE_LINEITEM,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
    AgsClient,
    LineItem,
    Result,
    service_url,
)
from lti_tool.lms.http import LmsPermissionError
from tests.conftest import load_fixture
from tests.fakelms.pytest_fixtures import GRANTED_AGS

EXCHANGES = load_fixture("moodle", "ags_instructor_lineitems_exchanges.json")
SCORED = load_fixture("moodle", "ags_student_score_and_results.json")


def test_scores_and_results_go_before_the_query() -> None:
    lineitem = EXCHANGES["ags_claim"]["lineitem"]
    assert service_url(lineitem, "scores") == SCORED["score_post"]["request"]["url"]
    assert service_url(lineitem, "results") == SCORED["results"]["request"]["url"]
    canvas = "https://example.instructure.com/api/lti/courses/311/line_items/77"
    assert service_url(canvas, "scores") == canvas + "/scores"


def test_fixture_bodies_parse() -> None:
    items = [LineItem.from_json(e) for e in EXCHANGES["lineitems_after_create"]["body"]]
    assert [i.label for i in items][:2] == ["Breakout (LTI 1.3)", "Tool-created line item"]
    assert items[0].resource_link_id == "1" and items[0].tag is None
    assert items[3].score_maximum == Decimal(999)
    [result] = [Result.from_json(e) for e in SCORED["results"]["body"]]
    assert (result.user_id, result.score, result.maximum) == ("4", Decimal(87), Decimal(100))
    assert result.timestamp == datetime(2026, 11, 22, 17, 55, 4, tzinfo=UTC)


def test_every_page_of_moodles_malformed_link_is_followed(moodle) -> None:
    moodle.fake.ags_page = 1
    client = AgsClient(moodle.bearer, GRANTED_AGS)
    labels = [i.label for i in client.line_items(moodle.fake.lineitems_url)]
    assert labels == ["Breakout (LTI 1.3)", "Tool-created line item", "Score", "Time Taken"]
    assert moodle.fake.count("/lineitems?") == 4
    assert "“next”".encode().decode("latin-1") in moodle.fake.app.test_client().get(
        moodle.fake.lineitems_url.replace(moodle.fake.base_url, "") + "&limit=1",
        headers={"Authorization": "Bearer " + moodle.tokens.token([SCOPE_LINEITEM])},
    ).headers["Link"]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"resource_link_id": "1"}, ["Breakout (LTI 1.3)"]),
    ({"tag": "time"}, ["Time Taken"]),
    ({"resource_id": "harness-res-1"}, ["Tool-created line item"]),
])
def test_filter_line_items(moodle, kwargs: dict, expected: list[str]) -> None:
    client = AgsClient(moodle.bearer, GRANTED_AGS)
    assert [i.label for i in client.line_items(moodle.fake.lineitems_url, **kwargs)] == expected


def test_results_of_a_line_item(moodle) -> None:
    client = AgsClient(moodle.bearer, GRANTED_AGS)
    [result] = list(client.results(moodle.fake.lineitem_url(5)))
    assert (result.user_id, result.score) == ("4", Decimal(87))
    assert moodle.fake.count("/lineitem/results?type_id=1") == 1


def test_results_are_paged(moodle) -> None:
    moodle.fake.ags_page = 2
    for uid in ("5", "6", "3"):
        moodle.fake.course.results[5][uid] = type(moodle.fake.course.results[5]["4"])(
            50, 100, "2026-11-22T17:55:04+00:00")
    client = AgsClient(moodle.bearer, GRANTED_AGS)
    assert sorted(r.user_id for r in client.results(moodle.fake.lineitem_url(5))) == [
        "3", "4", "5", "6"]
    assert moodle.fake.count("/lineitem/results") == 2


def test_moodle_score_post_answers_200_with_empty_body(moodle) -> None:
    client = AgsClient(moodle.bearer, GRANTED_AGS)
    body = dict(SCORED["score_post"]["request"]["body"], userId="5", scoreGiven=64)
    assert client.post_score(moodle.fake.lineitem_url(5), body) == {}
    assert moodle.fake.posted_scores == [body]
    assert moodle.fake.count("/lineitem/scores?type_id=1", "POST") == 1
    assert {r.user_id: r.score for r in client.results(moodle.fake.lineitem_url(5))}["5"] == 64


def test_canvas_score_post_answers_json(canvas) -> None:
    canvas.fake.course.line_items = [type(canvas.fake.course.line_items[0])(77, "MC", 100)] \
        if canvas.fake.course.line_items else []
    from testkit.fakelms.data import LineItem as FakeItem

    canvas.fake.course.line_items = [FakeItem(77, "Data Literacy", 100)]
    client = AgsClient(canvas.bearer, GRANTED_AGS)
    reply = client.post_score(canvas.fake.lineitem_url(77), {
        "userId": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "scoreGiven": 9, "scoreMaximum": 10,
        "activityProgress": "Completed", "gradingProgress": "FullyGraded",
        "timestamp": "2026-11-22T17:55:04+00:00"})
    assert reply["resultUrl"].startswith(canvas.fake.lineitem_url(77))


def test_scopes_the_launch_did_not_grant_are_refused_before_any_request(moodle) -> None:
    client = AgsClient(moodle.bearer, [SCOPE_LINEITEM, SCOPE_SCORE])
    with pytest.raises(LmsPermissionError) as caught:
        list(client.results(moodle.fake.lineitem_url(5)))
    assert "result.readonly" in caught.value.message
    client = AgsClient(moodle.bearer, [SCOPE_RESULT_READONLY])
    with pytest.raises(LmsPermissionError):
        client.post_score(moodle.fake.lineitem_url(5), {"userId": "4"})
    assert moodle.fake.log == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=12)
ags_like = st.fixed_dictionaries({}, optional={
    k: json_values for k in ("id", "label", "scoreMaximum", "resourceLinkId", "tag", "userId",
                             "resultScore", "resultMaximum", "timestamp", "comment")})


@given(st.one_of(json_values, ags_like))
def test_lms_replies_of_any_shape_never_raise(value) -> None:
    LineItem.from_json(value)
    Result.from_json(value)
