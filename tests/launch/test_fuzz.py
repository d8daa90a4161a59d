"""Random and mutated launch bodies: never a 500, never a stored row."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.lti import (
    LTI,
    b64,
    fixture_claims,
    forge,
    login,
    row_counts,
    session_rows,
    sign,
)

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=8)
CLAIMS = ["iss", "aud", "azp", "sub", "exp", "iat", "nbf", "nonce", LTI + "message_type",
          LTI + "version", LTI + "deployment_id", LTI + "roles", LTI + "context",
          LTI + "resource_link", LTI + "target_link_uri", LTI + "custom",
          LTI + "launch_presentation",
          "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint",
          "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice",
          "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _assert_refused(response, db) -> None:
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:500]
    assert set(session_rows(db).values()) == {0}


@FUZZ
@given(form=st.dictionaries(st.sampled_from(["id_token", "state", "error", "sid", "x"]) | TEXT,
                            TEXT, max_size=4))
def test_random_forms(client, db, moodle, form):
    _assert_refused(client.post("/lti/launch", data=form), db)


@FUZZ
@given(params=st.dictionaries(st.sampled_from([
    "iss", "login_hint", "target_link_uri", "client_id", "lti_message_hint",
    "lti_deployment_id", "lti_storage_target"]) | TEXT, TEXT, max_size=7),
    method=st.sampled_from(["GET", "POST"]))
def test_random_login_initiations(client, db, moodle, params, method):
    """Random login parameters: a redirect or page for a known registration, else a 4xx."""
    params.setdefault("iss", moodle.issuer)
    if method == "GET":
        response = client.get("/lti/login", query_string=params)
    else:
        response = client.post("/lti/login", data=params)
    assert response.status_code in (200, 302, 400), response.get_data(as_text=True)[:500]
    assert set(session_rows(db).values()) == {0}


@FUZZ
@given(header=st.dictionaries(TEXT, JSON_VALUES, max_size=3) | st.fixed_dictionaries(
    {"alg": st.sampled_from(["RS256", "none", "HS256", "RS512", ""]) | TEXT,
     "kid": JSON_VALUES}),
    payload=JSON_VALUES | st.dictionaries(st.sampled_from(CLAIMS), JSON_VALUES),
    signature=st.binary(max_size=300), state=TEXT)
def test_random_unsigned_tokens(client, db, moodle, header, payload, signature, state):
    token = forge(header, payload, signature)
    _assert_refused(client.post("/lti/launch", data={"id_token": token, "state": state}), db)


@FUZZ
@given(claim=st.sampled_from(CLAIMS), value=JSON_VALUES, drop=st.booleans(),
       state=TEXT, message=st.sampled_from([
           "moodle/id_token_instructor_resource_link.json",
           "moodle/id_token_instructor_deep_linking_request.json",
           "canvas/id_token_student_resource_link.json"]))
def test_validly_signed_tokens_with_mutated_claims(client, db, moodle, key, claim, value, drop,
                                                   state, message):
    """Signed with the registered key, so every claim check runs; the state is never a live
    one, so even a mutation that leaves a valid message cannot complete the launch."""
    claims = fixture_claims(message, moodle, deployment_id="1")
    if drop:
        claims.pop(claim, None)
    else:
        claims[claim] = value
    response = client.post("/lti/launch", data={"id_token": sign(claims, key), "state": state})
    _assert_refused(response, db)


@FUZZ
@given(position=st.integers(min_value=0), replacement=st.sampled_from("AZaz09-_.=+/ %"),
       cut=st.integers(min_value=0, max_value=3))
def test_bit_flipped_and_truncated_tokens(client, db, moodle, key, position, replacement, cut):
    claims = fixture_claims("moodle/id_token_instructor_resource_link.json", moodle)
    token = sign(claims, key)
    index = position % len(token)
    mutated = token[:index] + replacement + token[index + 1:]
    if cut:
        mutated = mutated[: len(mutated) - cut * 7]
    if mutated == token:
        return
    response = client.post("/lti/launch", data={"id_token": mutated, "state": "s"})
    _assert_refused(response, db)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=600), title=st.text(max_size=600),
       custom=st.dictionaries(st.text(max_size=20), JSON_VALUES, max_size=3),
       locale=st.text(max_size=30))
def test_live_launches_with_arbitrary_display_strings(client, db, moodle, key, name, title,
                                                      custom, locale):
    """Complete launches (live state, valid signature) carrying any text, NUL and surrogates
    included, where it is only displayed: a 303 that stores it, or a 4xx that stores nothing."""
    started = login(client, moodle)
    claims = fixture_claims("moodle/id_token_student_resource_link.json", moodle)
    claims.update({"nonce": started.nonce, "name": name, "given_name": name, "locale": locale,
                   LTI + "custom": custom})
    claims[LTI + "context"]["title"] = title
    claims[LTI + "resource_link"]["title"] = title
    before = row_counts(db)["WebSession"]
    response = client.post("/lti/launch", data={"id_token": sign(claims, key),
                                                "state": started.state})
    assert response.status_code in (303, 400), response.get_data(as_text=True)[:500]
    assert row_counts(db)["WebSession"] == before + (response.status_code == 303)


def test_deeply_nested_payload_is_refused(client, db, moodle):
    payload = "[" * 15_000 + "]" * 15_000  # deep enough to overflow the JSON parser
    token = ".".join([b64(json.dumps({"alg": "RS256"}).encode()), b64(payload.encode()), "x"])
    _assert_refused(client.post("/lti/launch", data={"id_token": token, "state": "s"}), db)
