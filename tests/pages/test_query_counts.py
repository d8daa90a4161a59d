"""The pages read a fixed number of queries whatever the course size (no N+1)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from testkit.seed import seed_course, seed_many_decisions, seed_offering
from tests.conftest import session_headers

PAGES = [("/instructor/", "instructor"), ("/instructor/overview.csv", "instructor"),
         ("/learner/", "learner1"), ("/admin/", "admin")]
MOST = 16  # 12 for the page, 1 frame-ancestors, 1 active registration, 2 a due survey


def queries_for(app, runtime, path: str, token: str) -> int:
    client = app.test_client()
    client.get(path, headers=session_headers(token))  # warm-up: first-request work is not counted
    count = {"n": 0}

    def _count(*_args) -> None:
        count["n"] += 1

    event.listen(runtime.engine, "before_cursor_execute", _count)
    try:
        assert client.get(path, headers=session_headers(token)).status_code == 200
    finally:
        event.remove(runtime.engine, "before_cursor_execute", _count)
    return count["n"]


@pytest.mark.parametrize(("path", "who"), PAGES)
def test_query_count_does_not_grow_with_the_course(app, runtime, db, path, who) -> None:
    small = seed_offering(db, seed_course(db, learners=3), outcomes=2)
    seed_many_decisions(db, small)
    big = seed_offering(db, seed_course(db, learners=60, issuer="https://big.invalid"),
                        outcomes=8, code="BIG")
    seed_many_decisions(db, big)
    few = queries_for(app, runtime, path, small.tokens[who])
    many = queries_for(app, runtime, path, big.tokens[who])
    assert few == many <= MOST, (few, many)
