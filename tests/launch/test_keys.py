"""The tool's JWKS, and fetching the platform's: cache, one refetch on an unknown kid."""

from __future__ import annotations

import pytest

from lti_tool.launch.jwks_cache import JwksCache, PlatformKeysUnavailable, fetch_jwks
from testkit.lti import (
    JwksServer,
    fixture_claims,
    login_and_launch,
    platform_key,
    register_platform,
    session_rows,
)
from tests.loopback import loopback_client, loopback_jwks_fetch

JSON = {"Accept": "application/json"}


def test_tool_jwks_publishes_public_rs256_keys_with_kid(client):
    response = client.get("/lti/jwks")
    assert response.status_code == 200
    keys = response.json["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"].startswith("lti-")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert client.get("/lti/jwks").json == response.json  # created once, then stable


@pytest.fixture
def served(db):
    """A platform whose keys are only at a JWKS URL served over loopback HTTP."""
    old = platform_key("rotating-old")
    with JwksServer(old.jwks) as server:
        platform = register_platform(db, issuer="https://lms.example.edu", client_id="c-1",
                                     key_set_url=server.url)
        yield platform, server, old


def _launch(client, platform, key):
    claims = fixture_claims("moodle/id_token_student_resource_link.json", platform)
    return login_and_launch(client, platform, key, claims, launch_headers=JSON)


def test_platform_keys_are_fetched_once_and_cached(app, client, served):
    platform, server, old = served
    app.extensions["lti_jwks_cache"] = JwksCache(fetch=loopback_jwks_fetch())
    assert _launch(client, platform, old).status_code == 303
    assert _launch(client, platform, old).status_code == 303
    assert server.hits == 1


def test_rotated_platform_key_is_found_by_one_refetch(app, client, db, served):
    platform, server, old = served
    app.extensions["lti_jwks_cache"] = JwksCache(fetch=loopback_jwks_fetch(), cooldown=0)
    assert _launch(client, platform, old).status_code == 303
    new = platform_key("rotating-new")
    server.jwks = {"keys": [new.public_jwk]}
    assert _launch(client, platform, new).status_code == 303
    assert server.hits == 2
    unknown = _launch(client, platform, platform_key("never-published"))
    assert unknown.status_code == 400
    assert "Unknown kid 'never-published-kid'" in unknown.json["message"]
    assert server.hits == 3  # one refetch for the unknown kid, not more


def test_unknown_kid_refetch_waits_for_the_cooldown(app, client, served):
    platform, server, old = served
    app.extensions["lti_jwks_cache"] = JwksCache(fetch=loopback_jwks_fetch(), cooldown=3600)
    assert _launch(client, platform, old).status_code == 303
    for _ in range(3):
        assert _launch(client, platform, platform_key("forged")).status_code == 400
    assert server.hits == 1


def test_unreachable_platform_jwks_is_a_502_that_names_the_url(client, db):
    platform = register_platform(db, issuer="https://down.example", client_id="c-2",
                                 key_set_url="http://127.0.0.1:9/jwks")
    response = _launch(client, platform, platform_key("platform"))
    assert response.status_code == 502
    assert "http://127.0.0.1:9/jwks" in response.json["message"]
    assert set(session_rows(db).values()) == {0}


def test_fetch_refuses_a_document_that_is_not_a_jwks():
    with JwksServer({"keys": "nope"}) as server, pytest.raises(PlatformKeysUnavailable) as err:
        fetch_jwks(server.url, outbound=loopback_client())
    assert "not a JWKS document" in err.value.message


def test_weak_platform_key_is_refused(client, db):
    weak = platform_key("weak", bits=1024)
    platform = register_platform(db, issuer="https://weak.example", client_id="c-3", key=weak)
    response = _launch(client, platform, weak)
    assert response.status_code == 400 and "1024 bits" in response.json["message"]


def test_platform_key_for_another_alg_is_refused(client, db):
    key = platform_key("platform")
    platform = register_platform(db, issuer="https://alg.example", client_id="c-4", key=key)
    platform.key_set = {"keys": [{**key.public_jwk, "alg": "RS512"}]}
    db.commit()
    response = _launch(client, platform, key)
    assert response.status_code == 400 and "is for RS512" in response.json["message"]


def test_rs384_and_rs512_launches_are_accepted(client, db):
    for alg in ("RS384", "RS512"):
        key = platform_key("platform", alg=alg)
        platform = register_platform(db, issuer=f"https://{alg.lower()}.example", client_id="c",
                                     key=key)
        assert _launch(client, platform, key).status_code == 303
