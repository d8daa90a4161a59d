"""Every forged, stale, replayed or malformed launch: a 4xx that names the problem, no rows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from jwcrypto import jwk, jws

from testkit.lti import (
    LTI,
    b64,
    drop_state_cookies,
    fixture_claims,
    forge,
    launch,
    login,
    platform_key,
    row_counts,
    session_rows,
    sign,
)

JSON = {"Accept": "application/json"}
ALIEN = platform_key("alien")


def _drop(name: str) -> Callable[[dict], None]:
    return lambda claims: claims.pop(name)


def _set(name: str, value: object) -> Callable[[dict], None]:
    return lambda claims: claims.__setitem__(name, value)


def _hs256_with_public_key(claims: dict, key) -> str:
    """The classic key-confusion forgery: HMAC keyed with the platform's public key."""
    secret = jwk.JWK(kty="oct", k=b64(key.key.export_to_pem()))
    token = jws.JWS(json.dumps(claims).encode())
    token.allowed_algs = ["HS256"]
    token.add_signature(secret, alg="HS256",
                        protected=json.dumps({"alg": "HS256", "kid": key.kid}))
    return token.serialize(compact=True)


def _tamper(claims: dict, key) -> str:
    header, _payload, signature = sign(claims, key).split(".")
    changed = {**claims, "sub": "someone-else"}
    return ".".join([header, b64(json.dumps(changed).encode()), signature])


NOW = int(time.time())
# name: (edit claims, make token, edit state, drop state cookie, status, message fragment)
CASES: dict[str, tuple] = {
    "bad signature (other key, same kid)": (
        None, lambda c, k: sign(c, ALIEN, header={"kid": k.kid}), None, False, 400,
        "signature does not verify"),
    "tampered payload": (None, _tamper, None, False, 400, "signature does not verify"),
    "alg none": (None, lambda c, k: forge({"alg": "none", "kid": k.kid}, c), None, False, 400,
                 "alg 'none' is not accepted"),
    "alg HS256 keyed with the public key": (None, _hs256_with_public_key, None, False, 400,
                                            "alg 'HS256' is not accepted"),
    "alg PS256": (None, lambda c, k: sign(c, k, alg="PS256"), None, False, 400,
                  "alg 'PS256' is not accepted"),
    "unknown kid": (None, lambda c, k: sign(c, k, header={"kid": "rotated-away"}), None, False,
                    400, "Unknown kid 'rotated-away'"),
    "expired": ({"exp": NOW - 3600, "iat": NOW - 3700}, None, None, False, 400, "expired at"),
    "issued in the future": ({"iat": NOW + 3600, "exp": NOW + 3700}, None, None, False, 400,
                             "issued in the future"),
    "not yet valid": ({"nbf": NOW + 3600}, None, None, False, 400, "not valid before"),
    "exp not a number": ({"exp": "tomorrow"}, None, None, False, 400, "exp is missing"),
    "wrong aud": ({"aud": "someone-else"}, None, None, False, 400,
                  "aud 'someone-else' is not a client_id registered"),
    "Moodle legacy consumer key as aud": ({"aud": "my-old-consumer-key"}, None, None, False,
                                          400, "legacy 'consumer key'"),
    "several audiences without azp": ("aud-list", None, None, False, 400, "but no azp"),
    "azp not the client_id": ({"azp": "other-client"}, None, None, False, 400,
                              "azp 'other-client' does not match"),
    "unknown issuer": ({"iss": "https://evil.example"}, None, None, False, 400,
                       "Unknown issuer 'https://evil.example'"),
    "unregistered deployment": ({LTI + "deployment_id": "99"}, None, None, False, 400,
                                "Deployment '99' is not registered"),
    "missing state": (None, None, lambda s: None, False, 400, "no state parameter"),
    "unknown state": (None, None, lambda s: "made-up-state", False, 400,
                      "state is unknown or already used"),
    "state cookie missing": (None, None, None, True, 400, "State mismatch"),
    "nonce not the login's": ({"nonce": "another-nonce"}, None, None, False, 400,
                              "nonce is not the one this tool sent"),
    "target_link_uri differs": ({LTI + "target_link_uri": "https://elsewhere.example/x"}, None,
                                None, False, 400, "target_link_uri"),
    "missing sub (anonymous launch)": (_drop("sub"), None, None, False, 400, "anonymous launch"),
    "missing deployment_id": (_drop(LTI + "deployment_id"), None, None, False, 400,
                              "deployment_id is missing"),
    "missing context": (_drop(LTI + "context"), None, None, False, 400, "has no "),
    "missing resource link": (_drop(LTI + "resource_link"), None, None, False, 400,
                              "resource_link"),
    "resource link without id": (_set(LTI + "resource_link", {"title": "x"}), None, None, False,
                                 400, "resource_link.id"),
    "roles not a list": (_set(LTI + "roles", "Instructor"), None, None, False, 400,
                         "must be a list of strings"),
    "wrong message type": (_set(LTI + "message_type", "LtiSubmissionReviewRequest"), None, None,
                           False, 400, "Unsupported message type"),
    "wrong version": (_set(LTI + "version", "1.1"), None, None, False, 400,
                      "Unsupported LTI version '1.1'"),
    "sub too long to store": (_set("sub", "x" * 300), None, None, False, 400,
                              "longer than 255"),
    "unmapped role": (_set(LTI + "roles", [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Observer"]), None, None, False, 403,
        "give no access"),
    "no roles at all": (_set(LTI + "roles", []), None, None, False, 403, "(none)"),
    "oversize id_token": (_set("padding", "x" * 70000), None, None, False, 413,
                          "larger than"),
    "two-part JWT": (None, lambda c, k: ".".join(sign(c, k).split(".")[:2]), None, False, 400,
                     "three dot-separated parts"),
    "header not base64 JSON": (None, lambda c, k: "%%%." + sign(c, k).split(".", 1)[1], None,
                               False, 400, "header is not base64url"),
    "payload a JSON array": (None, lambda c, k: forge({"alg": "RS256"}, [1, 2]), None, False,
                             400, "payload is not a JSON object"),
}


def _edit(claims: dict, edit: object) -> None:
    if edit == "aud-list":
        claims["aud"] = [claims["aud"], "another-audience"]
        claims.pop("azp", None)
    elif callable(edit):
        edit(claims)
    elif isinstance(edit, dict):
        claims.update(edit)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_launch_is_refused_and_stores_nothing(client, db, moodle, key, case):
    edit, make_token, edit_state, drop_cookie, status, fragment = CASES[case]
    started = login(client, moodle)
    claims = fixture_claims("moodle/id_token_instructor_resource_link.json", moodle)
    claims["nonce"] = started.nonce
    _edit(claims, edit)
    token = (make_token or sign)(claims, key)
    state = edit_state(started.state) if edit_state else started.state
    if drop_cookie:
        drop_state_cookies(client, started.state)
        # The cross-site POST gets the tool's same-origin re-post first; it fails the same.
        relay = launch(client, token, state)
        assert relay.status_code == 200 and 'id="lti-relay"' in relay.get_data(as_text=True)
        assert set(session_rows(db).values()) == {0}
        response = client.post("/lti/launch", data={"id_token": token, "state": state,
                                                    "lti_relay": "1"}, headers=JSON)
    else:
        response = launch(client, token, state, **JSON)
    assert response.status_code == status, response.get_data(as_text=True)
    assert fragment in response.json["message"]
    assert set(session_rows(db).values()) == {0}


def test_learner_deep_linking_request_is_forbidden(client, db, moodle, key):
    started = login(client, moodle)
    claims = fixture_claims("moodle/id_token_instructor_deep_linking_request.json", moodle)
    claims[LTI + "roles"] = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]
    claims["nonce"] = started.nonce
    response = launch(client, sign(claims, key), started.state, **JSON)
    assert response.status_code == 403
    assert "Only instructors" in response.json["message"]
    assert set(session_rows(db).values()) == {0}


@pytest.mark.parametrize(("body", "content_type", "fragment"), [
    ({}, None, "must be a form POST"),
    ({"id_token": ""}, None, "no id_token field"),
    ({"state": "abc"}, None, "no id_token field"),
    ({"error": "login_required", "error_description": "No session"}, None, "login_required"),
    ('{"id_token": "x"}', "application/json", "must be a form POST"),
])
def test_malformed_form_is_refused(client, db, moodle, body, content_type, fragment):
    response = client.post("/lti/launch", data=body, content_type=content_type, headers=JSON)
    assert response.status_code == 400
    assert fragment in response.json["message"]
    assert set(session_rows(db).values()) == {0}


def test_launch_body_over_the_limit_is_refused_before_parsing(client, db, moodle):
    response = client.post("/lti/launch", data={"id_token": "a" * 100_000, "state": "s"},
                           headers=JSON)
    assert response.status_code == 413
    assert "larger than" in response.json["message"]


def test_get_on_launch_is_not_allowed(client):
    assert client.get("/lti/launch").status_code == 405


@pytest.mark.parametrize(("params", "fragment"), [
    ({"login_hint": "x", "target_link_uri": "http://127.0.0.1:8000/lti/launch"}, "no iss"),
    ({"iss": "http://127.0.0.1:8100", "target_link_uri": "http://t/"}, "no login_hint"),
    ({"iss": "http://127.0.0.1:8100", "login_hint": "x"}, "no target_link_uri"),
    ({"iss": "https://nobody.example", "login_hint": "x", "target_link_uri": "http://t/"},
     "Unknown issuer"),
    ({"iss": "http://127.0.0.1:8100", "client_id": "nope", "login_hint": "x",
      "target_link_uri": "http://t/"}, "No registration for client_id 'nope'"),
    ({"iss": "http://127.0.0.1:8100", "login_hint": "x", "target_link_uri": "javascript:x"},
     "not an http(s) URL"),
    ({"iss": "http://127.0.0.1:8100", "login_hint": "x", "target_link_uri": "http://t/",
      "lti_storage_target": "\"><script>"}, "lti_storage_target"),
])
def test_bad_login_initiation_is_refused_without_state(client, db, moodle, params, fragment):
    response = client.post("/lti/login", data=params, headers=JSON)
    assert response.status_code == 400
    assert fragment in response.json["message"]
    counts = row_counts(db)
    assert counts == {**dict.fromkeys(counts, 0), "Deployment": 1}  # the registration's own


def test_login_never_sends_the_browser_off_the_registrations_lms(client, db, key):
    """An open redirect on the tool's domain would serve phishing: refused, no state kept."""
    from testkit.lti import register_platform

    register_platform(db, issuer="https://lms.example.org", client_id="c",
                      key=key, auth_login_url="https://phish.example/login")
    response = client.get("/lti/login", headers=JSON, query_string={
        "iss": "https://lms.example.org", "login_hint": "x", "target_link_uri": "http://t/"})
    assert response.status_code == 400 and "Location" not in response.headers
    assert "not a host of its LMS" in response.json["message"]


def test_registration_with_a_script_auth_url_never_reaches_the_browser(client, db, key):
    from testkit.lti import register_platform

    register_platform(db, issuer="https://evil.example", client_id="c", key=key,
                      auth_login_url="javascript:alert(document.domain)//")
    response = client.get("/lti/login", headers=JSON, query_string={
        "iss": "https://evil.example", "login_hint": "x", "target_link_uri": "http://t/",
        "lti_storage_target": "_parent"})
    assert response.status_code == 400
    assert "auth_login_url must be an absolute http(s) URL" in response.json["message"]
