"""Signed login states: a login writes nothing, and a launch accepts only a state this tool
issued, for that registration, within its lifetime, once."""

from __future__ import annotations

import string
import time
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from lti_tool.launch import login_state
from lti_tool.launch.login_state import StateRefused, issue, read
from lti_tool.store.db import Base, utcnow
from lti_tool.store.models.core import LoginState as LoginStateRow
from lti_tool.store.models.core import UsedNonce
from testkit.lti import LAUNCH_URL, fixture_claims, launch, login, sign

JSON = {"Accept": "application/json"}
SECRET = "a-test-secret"


def _table_counts(db) -> dict[str, int]:
    db.expire_all()
    return {table.name: db.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables}


def _student_token(platform, key, nonce: str) -> str:
    claims = fixture_claims("moodle/id_token_student_resource_link.json", platform)
    claims["nonce"] = nonce
    return sign(claims, key)


def test_a_login_writes_no_row_but_its_rate_limit_count(client, db, moodle):
    before = _table_counts(db)
    started = login(client, moodle)
    assert started.response.status_code == 302
    after = _table_counts(db)
    changed = {name for name in after if after[name] != before[name]}
    assert changed <= {"rate_limit_counter"}
    assert after["login_state"] == before["login_state"] == 0


def test_a_state_from_another_secret_is_refused(client, db, moodle, key):
    started = login(client, moodle)
    forged = issue("not-the-tools-secret", moodle.id, "http://127.0.0.1:8000/lti/launch", None)
    response = launch(client, _student_token(moodle, key, forged.nonce), forged.state, **JSON)
    assert response.status_code == 400
    assert "state is unknown" in response.json["message"]
    assert started.state != forged.state
    assert db.scalar(select(func.count()).select_from(UsedNonce)) == 0


def test_an_expired_login_is_refused(client, db, moodle, key, monkeypatch):
    lifetime = int(login_state.LIFETIME.total_seconds())
    with monkeypatch.context() as patch:  # the login happened 11 minutes ago
        patch.setattr(TimestampSigner, "get_timestamp",
                      lambda self: int(time.time()) - lifetime - 60)
        started = login(client, moodle)
    response = launch(client, _student_token(moodle, key, started.nonce), started.state,
                      **JSON)
    assert response.status_code == 400
    assert "login for this launch expired" in response.json["message"]
    assert db.scalar(select(func.count()).select_from(UsedNonce)) == 0


def test_the_used_nonce_outlives_the_state(client, db, moodle, key):
    started = login(client, moodle)
    token = _student_token(moodle, key, started.nonce)
    assert launch(client, token, started.state).status_code == 303
    used = db.scalar(select(UsedNonce))
    issued = read(client.application.secret_key, started.state)
    assert used.expires_at >= issued.expires_at  # the state cannot be used once it is pruned


def test_a_state_issued_to_another_registration_is_refused(client, db, moodle, canvas, key):
    other = issue(client.application.secret_key, canvas.id, "http://127.0.0.1:8000/lti/launch",
                  None)
    response = launch(client, _student_token(moodle, key, other.nonce), other.state, **JSON)
    assert response.status_code == 400
    assert "issued to another platform registration" in response.json["message"]


TARGETS = st.text(string.ascii_letters + string.digits + "/:.?=&-_", min_size=1, max_size=200)
STORAGE = st.none() | st.from_regex(r"\A[A-Za-z0-9_.\-]{1,100}\Z")


@given(platform_id=st.integers(1, 2**31 - 1), target=TARGETS, storage=STORAGE)
def test_a_state_reads_back_what_the_login_issued(platform_id, target, storage):
    issued = issue(SECRET, platform_id, target, storage)
    assert len(issued.state) <= 512  # the launch's own limit on the state parameter
    back = read(SECRET, issued.state)
    assert (back.platform_id, back.storage_target, back.nonce) == (
        platform_id, storage, issued.nonce)
    assert back.target_matches(target) and not back.target_matches(target + "x")


@given(platform_id=st.integers(1, 2**31 - 1), target=TARGETS, position=st.integers(0, 10**6),
       replacement=st.sampled_from(string.ascii_letters + string.digits + "-_."))
def test_a_changed_state_is_refused_or_reads_the_same(platform_id, target, position,
                                                       replacement):
    issued = issue(SECRET, platform_id, target, None)
    index = position % len(issued.state)
    changed = issued.state[:index] + replacement + issued.state[index + 1:]
    try:
        back = read(SECRET, changed)
    except StateRefused:
        return
    # base64's spare bits: a few edits decode to the very same signed bytes
    assert (back.platform_id, back.target_digest) == (platform_id, issued.target_digest)


def test_two_logins_alike_in_the_same_second_get_their_own_state_and_nonce():
    first, second = (issue(SECRET, 7, "https://tool.example/lti/launch", None) for _ in "ab")
    assert first.state != second.state and first.nonce != second.nonce


def _previous_release_login(db, platform, *, minutes: int = 10) -> LoginStateRow:
    """What a node of the previous release stored at login (during a rolling upgrade)."""
    row = LoginStateRow(state="old-release-state-123", nonce="old-release-nonce-456",
                        platform_id=platform.id, target_link_uri=LAUNCH_URL,
                        storage_target=None, expires_at=utcnow() + timedelta(minutes=minutes))
    db.add(row)
    db.commit()
    return row


def test_a_login_begun_on_a_previous_release_node_finishes_once(client, db, moodle, key):
    row = _previous_release_login(db, moodle)
    token = _student_token(moodle, key, row.nonce)
    client.set_cookie(f"lti_state_{row.state}", row.state, path="/lti/")  # its state cookie
    assert launch(client, token, row.state).status_code == 303
    assert db.scalar(select(func.count()).select_from(UsedNonce)) == 1
    replay = launch(client, token, row.state, **JSON)
    assert replay.status_code == 400 and "already used" in replay.json["message"]


def test_an_expired_previous_release_login_is_refused(client, db, moodle, key):
    row = _previous_release_login(db, moodle, minutes=-1)
    response = launch(client, _student_token(moodle, key, row.nonce), row.state, **JSON)
    assert response.status_code == 400
    assert "login for this launch expired" in response.json["message"]
