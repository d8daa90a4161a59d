"""Retries with bounded exponential backoff, Retry-After, timeouts and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lti_tool.lms.http import (
    LmsHttp,
    LmsPermissionError,
    LmsUnavailable,
    RetryPolicy,
    retry_after_seconds,
)
from testkit.fakelms import FakeLms
from tests.fakelms.pytest_fixtures import FAST_POLICY
from tests.loopback import loopback_client

WS = "/webservice/rest/server.php"


def _ws(fake: FakeLms, http: LmsHttp):
    return http.post(fake.base_url + WS, idempotent=True, data={
        "wstoken": fake.ws_token, "wsfunction": "core_grades_get_gradeitems",
        "moodlewsrestformat": "json", "courseid": "2"})


def test_429_waits_as_long_as_retry_after_says(moodle_lms: FakeLms, fast_http: LmsHttp) -> None:
    moodle_lms.fail(WS, status=429, retry_after="0.03", times=2)
    reply = _ws(moodle_lms, fast_http)
    assert reply.status_code == 200 and reply.json()["gradeItems"][0]["itemname"] == "Essay 1"
    assert fast_http.slept == [0.03, 0.03]
    assert moodle_lms.count(WS) == 3


def test_retry_after_is_capped_by_the_policy(moodle_lms: FakeLms, fast_http: LmsHttp) -> None:
    moodle_lms.fail(WS, status=503, retry_after="3600", times=1)
    assert _ws(moodle_lms, fast_http).status_code == 200
    assert fast_http.slept == [FAST_POLICY.max_delay]


def test_5xx_retries_stop_after_the_attempts(moodle_lms: FakeLms, fast_http: LmsHttp) -> None:
    moodle_lms.fail(WS, status=500, times=100)
    with pytest.raises(LmsUnavailable) as caught:
        _ws(moodle_lms, fast_http)
    assert moodle_lms.count(WS) == FAST_POLICY.attempts
    assert "HTTP 500" in caught.value.message and "try again later" in caught.value.message
    # exponential: each wait at least the previous one
    assert fast_http.slept == sorted(fast_http.slept) and len(fast_http.slept) == 2


def test_total_wait_is_bounded_by_the_budget(moodle_lms: FakeLms) -> None:
    slept: list[float] = []
    http = LmsHttp(RetryPolicy(attempts=50, base_delay=0.2, max_delay=0.2, budget=0.5),
                   outbound=loopback_client(), sleep=slept.append)
    moodle_lms.fail(WS, status=502, times=100)
    with pytest.raises(LmsUnavailable):
        _ws(moodle_lms, http)
    assert sum(slept) <= 0.5 and moodle_lms.count(WS) < 50


def test_dropped_connection_is_retried(moodle_lms: FakeLms, fast_http: LmsHttp) -> None:
    moodle_lms.fail(WS, drop=True, times=1)
    assert _ws(moodle_lms, fast_http).status_code == 200
    assert moodle_lms.count(WS) == 2


def test_slow_reply_times_out_and_is_retried(moodle_lms: FakeLms) -> None:
    http = LmsHttp(RetryPolicy(attempts=2, base_delay=0.01, read_timeout=0.2),
                   outbound=loopback_client(), sleep=lambda _: None)
    moodle_lms.fail(WS, delay=0.6, times=1)
    assert _ws(moodle_lms, http).status_code == 200
    assert moodle_lms.count(WS) == 2


def test_post_that_is_not_idempotent_is_not_repeated_after_a_500(
        moodle_lms: FakeLms, fast_http: LmsHttp) -> None:
    moodle_lms.fail(WS, status=500, times=5)
    with pytest.raises(LmsUnavailable):
        fast_http.post(moodle_lms.base_url + WS, data={})
    assert moodle_lms.count(WS) == 1


def test_403_names_what_is_missing(moodle_lms: FakeLms, fast_http: LmsHttp) -> None:
    moodle_lms.fail(WS, status=403, times=1)
    with pytest.raises(LmsPermissionError) as caught:
        fast_http.get(moodle_lms.base_url + WS, needed="the scope result.readonly")
    assert "result.readonly" in caught.value.message
    assert caught.value.status == 403 and moodle_lms.count(WS) == 1


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert retry_after_seconds(later, now=now.timestamp()) == pytest.approx(7)
    assert retry_after_seconds("-5") == 0.0
    assert retry_after_seconds("soon") is None


@given(st.text(max_size=60))
def test_retry_after_never_raises(value: str) -> None:
    result = retry_after_seconds(value)
    assert result is None or result >= 0
