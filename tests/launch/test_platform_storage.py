"""Cookie-less launches: Canvas's platform storage, and the cookie check in an iframe."""

from __future__ import annotations

import re

from sqlalchemy import select

from lti_tool.launch.login_state import read
from lti_tool.store.models.core import WebSession
from testkit.lti import (
    drop_session_cookies,
    drop_state_cookies,
    fixture_claims,
    launch,
    login,
    query_of,
    session_rows,
    sign,
)
from tests.launch.conftest import CANVAS_AUTH

JSON = {"Accept": "application/json"}
CONFIRM = {"X-LTI-Storage-Check": "1", "Sec-Fetch-Site": "same-origin", **JSON}


def _storage_login(client, canvas):
    started = login(client, canvas, method="POST", canvas_region="us-east-1",
                    canvas_environment="prod", lti_storage_target="post_message_forwarding",
                    lti_message_hint="eyJhbGciOiJIUzI1NiJ9.opaque.hint")
    return started


def test_login_with_storage_target_puts_state_into_platform_storage(client, db, canvas):
    started = _storage_login(client, canvas)
    page = started.response.get_data(as_text=True)
    assert started.response.status_code == 200
    assert "lti-storage.js" in page and "ltiStorage.put" in page
    assert '"post_message_forwarding"' in page
    assert '"https://sso.canvaslms.com"' in page  # postMessage targets the platform origin
    assert f'"{started.state}"' in page
    # The opaque Canvas hint goes back unchanged; the state itself names the storage target.
    assert started.params["lti_message_hint"] == "eyJhbGciOiJIUzI1NiJ9.opaque.hint"
    assert started.params["redirect_uri"] == "http://127.0.0.1:8000/lti/launch"
    assert read(client.application.secret_key, started.state).storage_target == (
        "post_message_forwarding")


def test_cookieless_launch_is_confirmed_through_platform_storage(client, db, canvas, key):
    started = _storage_login(client, canvas)
    drop_state_cookies(client, started.state)  # third-party cookies off
    claims = fixture_claims("canvas/id_token_student_resource_link.json", canvas)
    claims["nonce"] = started.nonce
    token = sign(claims, key)

    check_page = launch(client, token, started.state)
    assert check_page.status_code == 200
    page = check_page.get_data(as_text=True)
    assert "ltiStorage.get" in page and "/lti/launch/confirm" in page
    assert set(session_rows(db).values()) == {0}  # nothing written before confirmation

    confirmed = client.post("/lti/launch/confirm", data={"id_token": token,
                                                          "state": started.state},
                            headers=CONFIRM)
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    location = confirmed.json["location"]
    assert location.startswith("/learner/")
    code = query_of(location)["lc"]
    drop_session_cookies(client)
    assert client.get(location).status_code == 200
    assert db.scalar(select(WebSession.role)) == "learner" and code


def test_confirmation_without_the_tool_page_header_is_refused(client, db, canvas, key):
    started = _storage_login(client, canvas)
    claims = fixture_claims("canvas/id_token_student_resource_link.json", canvas)
    claims["nonce"] = started.nonce
    data = {"id_token": sign(claims, key), "state": started.state}
    forged = client.post("/lti/launch/confirm", data=data, headers=JSON)
    assert forged.status_code == 400 and "own launch page" in forged.json["message"]
    cross_site = client.post("/lti/launch/confirm", data=data,
                             headers={**CONFIRM, "Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 400
    assert set(session_rows(db).values()) == {0}


def test_confirmation_needs_a_platform_storage_login(client, db, moodle, key):
    started = login(client, moodle)
    claims = fixture_claims("moodle/id_token_student_resource_link.json", moodle)
    claims["nonce"] = started.nonce
    response = client.post("/lti/launch/confirm", data={"id_token": sign(claims, key),
                                                        "state": started.state}, headers=CONFIRM)
    assert response.status_code == 400 and "state cookie" in response.json["message"]
    assert set(session_rows(db).values()) == {0}


def test_storage_launch_whose_cookie_did_work_completes_at_once_with_a_code(client, db, canvas,
                                                                         key):
    started = _storage_login(client, canvas)
    claims = fixture_claims("canvas/id_token_instructor_resource_link.json", canvas)
    claims["nonce"] = started.nonce
    response = launch(client, sign(claims, key), started.state)
    assert response.status_code == 303
    assert "lc" in query_of(response.headers["Location"])


def test_framed_login_without_storage_checks_cookies_first(client, db, moodle):
    started = login(client, moodle, method="POST", headers={"Sec-Fetch-Dest": "iframe"},
                    _scheme="javascript", extra="%0aalert(1)")
    page = started.response.get_data(as_text=True)
    assert started.response.status_code == 200
    assert "lti_cookie_check=1" in page and "Open in a new window" in page
    # The new-window link restarts the same login at top level, with the original parameters.
    retry = re.search(r'href="(http://[^"]*/lti/login\?[^"]*)" target="_blank"', page).group(1)
    retry_params = query_of(retry.replace("&amp;", "&"))
    assert retry_params["login_hint"] == "hint-1" and retry_params["iss"] == moodle.issuer
    assert "_scheme" not in retry_params and "extra" not in retry_params  # only login params
    cookies = started.response.headers.getlist("Set-Cookie")
    assert any(c.startswith("lti_cookie_check=1") and "HttpOnly" not in c for c in cookies)
    assert any(c.startswith(f"lti_state_{started.state}=") and "HttpOnly" in c for c in cookies)


def test_top_level_login_redirects_with_a_state_cookie(client, moodle):
    started = login(client, moodle, method="POST",
                    lti_message_hint='{"cmid":3,"launchid":"ltilaunch1_888867290"}')
    response = started.response
    assert response.status_code == 302
    assert response.headers["Location"].startswith(moodle.auth_login_url + "?")
    params = started.params
    assert params["lti_message_hint"] == '{"cmid":3,"launchid":"ltilaunch1_888867290"}'
    assert (params["scope"], params["response_type"], params["response_mode"],
            params["prompt"]) == ("openid", "id_token", "form_post", "none")
    assert params["client_id"] == moodle.client_id and params["login_hint"] == "hint-1"
    cookie = next(c for c in response.headers.getlist("Set-Cookie")
                  if c.startswith(f"lti_state_{started.state}="))
    # Loopback is a secure context: SameSite=None; Secure, so the cross-site POST carries it.
    assert "Path=/lti/" in cookie and "HttpOnly" in cookie and "SameSite=None" in cookie
    assert "Secure" in cookie
    lax = next(c for c in response.headers.getlist("Set-Cookie")
               if c.startswith(f"lti_state_lax_{started.state}="))
    assert "SameSite=Lax" in lax and "HttpOnly" in lax and "Secure" not in lax


def test_state_cookie_is_samesite_none_and_secure_on_https(app, moodle):
    import dataclasses

    settings = app.config["LTI_SETTINGS"]
    app.config["LTI_SETTINGS"] = dataclasses.replace(settings, base_url="https://tool.example")
    started = login(app.test_client(), moodle)
    cookie = next(c for c in started.response.headers.getlist("Set-Cookie")
                  if c.startswith("lti_state_"))
    assert "Secure" in cookie and "SameSite=None" in cookie
    assert started.params["redirect_uri"] == "https://tool.example/lti/launch"


def test_canvas_login_fixture_is_accepted_as_posted(client, db, canvas):
    from tests.conftest import load_fixture

    params = load_fixture("canvas", "oidc_login_initiation.json")["params"]
    response = client.post("/lti/login", data=params)
    assert response.status_code == 200  # storage target -> platform storage page
    state = re.search(r'var state = "([^"]+)";', response.get_data(as_text=True)).group(1)
    assert read(client.application.secret_key, state).storage_target == "post_message_forwarding"
    assert CANVAS_AUTH.split("/api")[0] in response.get_data(as_text=True)


def test_moodle_login_fixture_is_accepted(client, db, moodle):
    from tests.conftest import load_fixture

    params = load_fixture("moodle", "oidc_login_initiation.json")["params"]
    response = client.get("/lti/login", query_string=params)
    assert response.status_code == 302
    hint = query_of(response.headers["Location"])["lti_message_hint"]
    assert hint == params["lti_message_hint"]


def test_without_the_secure_state_cookie_the_same_site_re_post_completes(client, db, moodle,
                                                                         key):
    """A browser that refuses `Secure` cookies on plain-HTTP loopback keeps only the Lax twin,
    which a cross-site POST does not carry: the tool's page re-posts the form same-site."""
    started = login(client, moodle)
    lax = client.get_cookie(f"lti_state_lax_{started.state}", path="/lti/")
    assert lax is not None and lax.value == started.state
    # the cross-site POST: no Secure cookie (refused), no Lax one (SameSite)
    drop_state_cookies(client, started.state)
    claims = fixture_claims("moodle/id_token_student_resource_link.json", moodle)
    claims["nonce"] = started.nonce
    token = sign(claims, key)
    relay = client.post("/lti/launch", data={"id_token": token, "state": started.state},
                        headers={"Sec-Fetch-Site": "cross-site"})
    page = relay.get_data(as_text=True)
    assert relay.status_code == 200 and 'id="lti-relay"' in page and "<noscript>" in page
    assert set(session_rows(db).values()) == {0}  # nothing consumed before the re-post
    # the tool's own page posts same-site: the browser sends the Lax twin along
    client.set_cookie(lax.key, lax.value, path="/lti/")
    done = client.post("/lti/launch", data={"id_token": token, "state": started.state,
                                            "lti_relay": "1"})
    assert done.status_code == 303 and done.headers["Location"].startswith("/learner/")
