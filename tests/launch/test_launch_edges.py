"""Hostile and odd launches beyond the bad-input table: missing times, anonymous launches,
duplicated form fields, GET on the launch URL, very long claims and claims of the wrong type."""

from __future__ import annotations

import json
import time

import pytest
from jwcrypto import jws
from sqlalchemy import select

from lti_tool.store.models.core import Context, Person, ResourceLink, WebSession
from testkit.lti import (
    LTI,
    _AuthUrlFinder,
    b64,
    fixture_claims,
    launch,
    login,
    login_and_launch,
    platform_key,
    query_of,
    session_rows,
    sign,
)
from tests.conftest import load_fixture

JSON = {"Accept": "application/json"}
MOODLE_TEACHER = "moodle/id_token_instructor_resource_link.json"


def _signed(client, platform, key, edit):
    started = login(client, platform)
    claims = fixture_claims(MOODLE_TEACHER, platform)
    claims["nonce"] = started.nonce
    edit(claims)
    return sign(claims, key), started.state


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda c: c.pop("exp"), "claim exp is missing or not a NumericDate"),
    (lambda c: c.pop("iat"), "claim iat is missing or not a NumericDate"),
    (lambda c: c.update(exp=True), "claim exp is missing or not a NumericDate"),
    (lambda c: c.update(exp=1e300), "claim exp is missing or not a NumericDate"),
    (lambda c: c.update(nbf="soon"), "claim nbf is missing or not a NumericDate"),
    (lambda c: c.pop("sub"), "anonymous launch"),
    (lambda c: c.update(sub=None), "anonymous launch"),
    (lambda c: c.update(sub=42), "claim sub is missing or not a non-empty string"),
    (lambda c: c.update(sub="   "), "claim sub is missing or not a non-empty string"),
    (lambda c: c[LTI + "context"].update(id="c" * 256), "context.id is longer than 255"),
    (lambda c: c[LTI + "resource_link"].update(id=7), "resource_link.id is missing"),
    (lambda c: c.update({LTI + "deployment_id": 1}), "deployment_id is missing"),
    (lambda c: c.update(nonce=["n"]), "claim nonce is missing"),
    (lambda c: c.update({LTI + "context": ["2"]}), "context must be a JSON object"),
    (lambda c: c.update({LTI + "roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor", 7]}),
     "must be a list of strings"),
    (lambda c: c["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"].update(
        lineitems="https://lms.example/" + "x" * 1000), "lineitems is longer than 1000"),
    (lambda c: c.update(aud=[]), "aud must be a client_id string or a list"),
    (lambda c: c.update(azp=["wIHNTU76CCVPeFh"]), "azp must be a string"),
])
def test_claims_missing_or_of_the_wrong_type_are_refused(client, db, moodle, key, edit,
                                                         fragment):
    token, state = _signed(client, moodle, key, edit)
    response = launch(client, token, state, **JSON)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert fragment in response.json["message"]
    assert set(session_rows(db).values()) == {0}


@pytest.mark.parametrize("field", ["id_token", "state"])
def test_duplicated_launch_form_fields_are_refused(client, db, moodle, key, field):
    token, state = _signed(client, moodle, key, lambda c: None)
    values = {"id_token": token, "state": state}
    body = [(name, value) for name, value in values.items()] + [(field, values[field])]
    form = "&".join(f"{name}={value}" for name, value in body)
    response = client.post("/lti/launch", data=form, headers=JSON,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert f"more than one {field}" in response.json["message"]
    assert set(session_rows(db).values()) == {0}


def test_duplicated_login_parameters_are_refused(client, db, moodle):
    form = ("iss=http%3A%2F%2F127.0.0.1%3A8100&iss=https%3A%2F%2Fevil.example&login_hint=5&"
            "target_link_uri=http%3A%2F%2F127.0.0.1%3A8000%2Flti%2Flaunch")
    response = client.post("/lti/login", data=form, headers=JSON,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "more than one iss" in response.json["message"]


def test_get_on_the_launch_url_explains_itself(client):
    response = client.get("/lti/launch", headers=JSON)
    assert response.status_code == 405
    assert "form POST" in response.json["message"] and "from your course" in response.json[
        "message"]
    page = client.get("/lti/launch")
    assert page.status_code == 405 and "from your course" in page.get_data(as_text=True)


def test_very_long_display_claims_are_cut_to_their_columns(client, db, moodle, key):
    claims = fixture_claims(MOODLE_TEACHER, moodle)
    claims.update(name="N" * 2000, given_name="G" * 2000, family_name="F" * 2000,
                  email="e" * 2000 + "@example.edu", locale="tr-" + "x" * 100)
    claims[LTI + "context"].update(title="T" * 2000, label="L" * 2000)
    claims[LTI + "resource_link"].update(title="R" * 2000)
    claims[LTI + "custom"] = {"long": "v" * 10000}
    claims[LTI + "roles"] = claims[LTI + "roles"] * 200  # one role repeated 200 times
    response = login_and_launch(client, moodle, key, claims, launch_headers=JSON)
    assert response.status_code == 303, response.get_data(as_text=True)
    person = db.scalar(select(Person))
    assert (len(person.name), len(person.given_name), len(person.family_name),
            len(person.email)) == (500, 255, 255, 500)
    context = db.scalar(select(Context))
    assert (len(context.title), len(context.label)) == (500, 255)
    link = db.scalar(select(ResourceLink))
    assert len(link.title) == 500 and len(link.custom["long"]) == 10000
    assert db.scalar(select(WebSession.role)) == "instructor"


def test_display_claims_of_the_wrong_type_are_ignored_not_fatal(client, db, moodle, key):
    claims = fixture_claims(MOODLE_TEACHER, moodle)
    claims.update(name=42, given_name=["x"], email={"a": 1}, locale=7)
    claims[LTI + "context"].update(title={"x": 1}, label=3)
    claims[LTI + "resource_link"].update(title=None)
    claims[LTI + "custom"] = {"offering_id": {"nested": True}, "n": 1.5, "b": False}
    claims[LTI + "launch_presentation"] = {"document_target": ["iframe"], "locale": 5,
                                           "return_url": 9}
    claims[LTI + "lis"] = {"person_sourcedid": 12}
    response = login_and_launch(client, moodle, key, claims, launch_headers=JSON)
    assert response.status_code == 303, response.get_data(as_text=True)
    person = db.scalar(select(Person))
    assert person.email is None and person.lis_person_sourcedid is None
    assert db.scalar(select(ResourceLink.custom))["offering_id"] == {"nested": True}
    landing = client.get(response.headers["Location"])
    assert landing.status_code == 200  # the instructor page copes with the odd custom value


def _with_repeated_member(claims: dict, key) -> str:
    """A really signed token whose payload names `sub` twice (another parser may pick either)."""
    body = json.dumps(claims)[:-1] + ', "sub": "someone-else"}'
    token = jws.JWS(body.encode())
    token.add_signature(key.key, alg="RS256",
                        protected=json.dumps({"alg": "RS256", "kid": key.kid}))
    return token.serialize(compact=True)


def _with_own_key_in_header(claims: dict, key) -> str:
    """Signed by an attacker who puts their own public key in the header (jwk / jku)."""
    attacker = platform_key("attacker")
    return sign(claims, attacker, header={"kid": key.kid, "jwk": attacker.public_jwk,
                                          "jku": "https://evil.example/jwks"})


@pytest.mark.parametrize(("make_token", "fragment"), [
    (_with_repeated_member, "payload repeats the member 'sub'"),
    (_with_own_key_in_header, "signature does not verify"),
    (lambda c, k: ".".join([b64(json.dumps({"alg": "RS256", "kid": k.kid, "crit": ["exp"],
                                            "exp": 1}).encode()),
                            *sign(c, k).split(".")[1:]]), "critical extensions"),
])
def test_token_tricks_are_refused(client, db, moodle, key, make_token, fragment):
    started = login(client, moodle)
    claims = fixture_claims(MOODLE_TEACHER, moodle)
    claims["nonce"] = started.nonce
    response = launch(client, make_token(claims, key), started.state, **JSON)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert fragment in response.json["message"]
    assert set(session_rows(db).values()) == {0}


@pytest.mark.parametrize("skew", [-50, 50])
def test_clock_skew_within_the_leeway_is_accepted(client, db, moodle, key, skew):
    """The LMS clock may be up to jwt_leeway_seconds (60) ahead of or behind the tool's."""
    now = int(time.time()) + skew
    claims = fixture_claims(MOODLE_TEACHER, moodle, now=now)
    claims.update(iat=now, nbf=now, exp=now + 5)
    response = login_and_launch(client, moodle, key, claims, launch_headers=JSON)
    assert response.status_code == 303, response.get_data(as_text=True)



def _auth_request(response, platform) -> dict[str, str]:
    """The tool's authentication request to the platform: a redirect, or the platform-storage
    page's link on to the LMS."""
    if response.status_code == 302:
        return query_of(response.headers["Location"])
    assert response.status_code == 200, response.get_data(as_text=True)
    finder = _AuthUrlFinder()
    finder.feed(response.get_data(as_text=True))
    return query_of(next(u for u in finder.links if u.startswith(platform.auth_login_url)))


@pytest.mark.parametrize(("platform_name", "login_file", "claims_file", "home"), [
    ("moodle", "moodle/oidc_login_initiation.json",
     "moodle/id_token_instructor_resource_link.json", "/instructor/"),
    ("canvas", "canvas/oidc_login_initiation.json",
     "canvas/id_token_student_resource_link.json", "/learner/"),
])
def test_captured_login_posted_as_is_then_launched(request, client, db, key, platform_name,
                                                   login_file, claims_file, home):
    """The login initiation exactly as the platform POSTs it (Moodle's JSON message hint,
    Canvas's opaque hint, storage target and region), then the launch answering it."""
    platform = request.getfixturevalue(platform_name)
    params = load_fixture(*login_file.split("/"))["params"]
    auth = _auth_request(client.post("/lti/login", data=params), platform)
    assert auth["lti_message_hint"] == params["lti_message_hint"]
    assert auth["client_id"] == platform.client_id
    claims = fixture_claims(claims_file, platform)
    claims[LTI + "target_link_uri"] = params["target_link_uri"]
    claims["nonce"] = auth["nonce"]
    response = launch(client, sign(claims, key), auth["state"], **JSON)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(home)
    assert db.scalar(select(WebSession.platform_id)) == platform.id
