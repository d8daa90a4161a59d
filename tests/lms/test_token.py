"""Service tokens: a client assertion the LMS verifies against our JWKS; cached per scope set."""

from __future__ import annotations

import pytest

from lti_tool.lms.http import LmsPermissionError
from lti_tool.lms.nrps import SCOPE_MEMBERSHIP
from lti_tool.lms.token import CACHE
from tests.fakelms.pytest_fixtures import GRANTED_AGS

TOKEN = "/mod/lti/token.php"


def test_assertion_is_signed_with_the_tool_key_and_verified_by_the_lms(moodle) -> None:
    token = moodle.tokens.token(GRANTED_AGS)
    assert token in moodle.fake.tokens
    # The fake verified the signature with jwcrypto against the tool's published JWKS.
    [checked] = moodle.fake.assertions
    claims, header = checked["claims"], checked["header"]
    assert claims["iss"] == claims["sub"] == moodle.platform.client_id
    assert claims["aud"] == moodle.fake.token_url
    assert claims["exp"] - claims["iat"] <= 300 and claims["jti"]
    assert header["alg"] == "RS256" and header["kid"].startswith("lti-")


def test_token_is_cached_per_platform_and_scope_set(moodle) -> None:
    first = moodle.tokens.token(GRANTED_AGS)
    assert moodle.tokens.token(list(reversed(GRANTED_AGS))) == first
    other = moodle.tokens.token([SCOPE_MEMBERSHIP])
    assert other != first
    assert moodle.fake.count(TOKEN) == 2


def test_token_is_renewed_shortly_before_it_expires(moodle) -> None:
    moodle.fake.token_lifetime = 30  # inside the refresh margin: never reused
    moodle.tokens.token(GRANTED_AGS)
    moodle.tokens.token(GRANTED_AGS)
    assert moodle.fake.count(TOKEN) == 2


def test_refused_scope_is_named(moodle) -> None:
    moodle.fake.allowed_scopes = frozenset(GRANTED_AGS)
    with pytest.raises(LmsPermissionError) as caught:
        moodle.tokens.token([SCOPE_MEMBERSHIP])
    assert "contextmembership.readonly" in caught.value.message


def test_wrong_client_id_gives_an_actionable_message(moodle) -> None:
    moodle.fake.client_id = "someone-else"
    with pytest.raises(LmsPermissionError) as caught:
        moodle.tokens.token(GRANTED_AGS)
    assert "registration" in caught.value.message


def test_a_revoked_token_is_replaced_once(moodle) -> None:
    from lti_tool.lms.ags import AgsClient

    client = AgsClient(moodle.bearer, GRANTED_AGS)
    assert len(list(client.line_items(moodle.fake.lineitems_url))) == 4
    moodle.fake.tokens.clear()  # the LMS forgot every token (e.g. restarted)
    assert len(list(client.line_items(moodle.fake.lineitems_url))) == 4
    assert moodle.fake.count(TOKEN) == 2
    CACHE.clear()
