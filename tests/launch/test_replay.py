"""Single use of state and nonce, also when two worker processes race with the same launch."""

from __future__ import annotations

import threading

from sqlalchemy import select

from lti_tool.store.models.core import UsedNonce
from testkit.lti import (
    fixture_claims,
    launch,
    login,
    session_rows,
    sign,
)

JSON = {"Accept": "application/json"}


def _signed_launch(client, platform, key):
    started = login(client, platform)
    claims = fixture_claims("moodle/id_token_student_resource_link.json", platform)
    claims["nonce"] = started.nonce
    return sign(claims, key), started


def test_replayed_launch_is_refused_and_adds_nothing(client, db, moodle, key):
    token, started = _signed_launch(client, moodle, key)
    assert launch(client, token, started.state).status_code == 303
    before = session_rows(db)
    replay = launch(client, token, started.state, **JSON)
    assert replay.status_code == 400
    assert "already used" in replay.json["message"] and "nonce" in replay.json["message"]
    assert session_rows(db) == before
    used = db.scalar(select(UsedNonce))
    assert used.nonce == started.nonce and used.platform_id == moodle.id


def test_replay_with_a_fresh_login_state_is_refused(client, db, moodle, key):
    token, started = _signed_launch(client, moodle, key)
    assert launch(client, token, started.state).status_code == 303
    fresh = login(client, moodle)  # the attacker starts a new login to get a live state
    replay = launch(client, token, fresh.state, **JSON)
    assert replay.status_code == 400
    assert "nonce is not the one this tool sent" in replay.json["message"]


def test_concurrent_twins_of_one_launch_make_exactly_one_session(app, db, moodle, key):
    """Two requests with the same id_token and state, in two threads with their own database
    connections: the state delete and the UsedNonce unique key let only one through."""
    first = app.test_client()
    token, started = _signed_launch(first, moodle, key)
    cookie = first.get_cookie(f"lti_state_{started.state}", path="/lti/")
    clients = [first, app.test_client()]
    clients[1].set_cookie(cookie.key, cookie.value, path="/lti/")
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def run(client) -> None:
        barrier.wait()
        statuses.append(launch(client, token, started.state, **JSON).status_code)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [303, 400]
    counts = session_rows(db)
    assert (counts["WebSession"], counts["UsedNonce"], counts["Person"]) == (1, 1, 1)
