"""The login's rate limit (lti_tool.web.ratelimit): counted per address in the database,
headers on every counted answer, a 429 past the limit, and nothing counted elsewhere."""

from __future__ import annotations

import dataclasses
import time

from sqlalchemy import delete, select

from lti_tool.runtime import Runtime
from lti_tool.store.models.core import RateLimitCounter
from lti_tool.web import create_app

JSON = {"Accept": "application/json"}


def _client(runtime: Runtime, **limits: str):
    limited = dataclasses.replace(runtime.settings, **limits)
    return create_app(runtime=Runtime(settings=limited, engine=runtime.engine,
                                      sessions=runtime.sessions)).test_client()


def test_counted_answers_carry_the_window_and_the_fourth_login_is_refused(runtime, db):
    db.execute(delete(RateLimitCounter))
    db.commit()
    client = _client(runtime, rate_limit_login="3/minute")
    replies = [client.get("/lti/login", headers=JSON) for _ in range(4)]
    assert [r.status_code for r in replies[:3]] == [400] * 3  # counted, then refused as bad
    assert replies[3].status_code == 429
    assert replies[3].get_json()["message"] == "3 per 1 minute"
    now = time.time()
    for remaining, reply in zip(("2", "1", "0", "0"), replies, strict=True):
        assert reply.headers["X-RateLimit-Limit"] == "3"
        assert reply.headers["X-RateLimit-Remaining"] == remaining
        reset = int(reply.headers["X-RateLimit-Reset"])
        assert now < reset <= now + 61
        assert 0 <= int(reply.headers["Retry-After"]) <= 60
    # the key layout Flask-Limiter wrote, so counters carry over an upgrade
    keys = db.scalars(select(RateLimitCounter.key)).all()
    assert keys == ["LIMITER/lti-tool/127.0.0.1/lti.login/3/1/minute"]


def test_limits_count_tightest_first_up_to_the_first_exceeded(runtime, db):
    db.execute(delete(RateLimitCounter))
    db.commit()
    client = _client(runtime, rate_limit_login="5/hour;2/minute")
    statuses = [client.get("/lti/login", headers=JSON).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    counts = dict(db.execute(select(RateLimitCounter.key, RateLimitCounter.count)).all())
    assert counts == {"LIMITER/lti-tool/127.0.0.1/lti.login/2/1/minute": 3,
                      "LIMITER/lti-tool/127.0.0.1/lti.login/5/1/hour": 2}


def test_unlimited_views_count_nothing_and_carry_no_headers(runtime, db):
    db.execute(delete(RateLimitCounter))
    db.commit()
    client = _client(runtime, rate_limit_login="1/minute")
    for _ in range(3):
        reply = client.post("/lti/launch", data={"id_token": "x.y.z"}, headers=JSON)
        assert reply.status_code == 400
        assert "X-RateLimit-Limit" not in reply.headers
    assert db.scalars(select(RateLimitCounter.key)).all() == []
