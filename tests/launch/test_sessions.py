"""Sessions after a launch: one-time codes, browser binding, sliding expiry, revocation,
session fixation, frame-ancestors and access logs without secrets.

Every session here comes from a real launch (signed id_token, OIDC state) through the Flask
test client; the cookie is dropped where the browser would block it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from lti_tool.store.db import utcnow
from lti_tool.store.models.core import WebSession
from lti_tool.web import auth
from lti_tool.web.accesslog import SECRET_PARAMS, redact_request_line, redact_url
from testkit.lti import drop_session_cookies, fixture_claims, login_and_launch, query_of

EMBEDDED = "moodle/id_token_student_resource_link_iframe.json"
INSTRUCTOR = "moodle/id_token_instructor_resource_link.json"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


def framed_launch(client, platform, key, fixture=EMBEDDED, agent=FIREFOX, **claims_edit):
    """A framed launch whose browser keeps no cookie: returns (landing URL, session row id)."""
    claims = fixture_claims(fixture, platform)
    claims.update(claims_edit)
    response = login_and_launch(client, platform, key, claims,
                                launch_headers={"User-Agent": agent,
                                                "Sec-Fetch-Dest": "iframe"})
    assert response.status_code == 303, response.get_data(as_text=True)
    drop_session_cookies(client)
    return response.headers["Location"]


def enter(client, location, agent=FIREFOX, **headers):
    return client.get(location, headers={"User-Agent": agent, **headers})


def page_token_of(html: str) -> str:
    return re.search(r'name="sid" value="([^"]+)"', html).group(1)


def test_the_launch_code_opens_the_page_once_and_the_page_holds_a_page_token(
        client, db, moodle, key):
    location = framed_launch(client, moodle, key)
    page = enter(client, location)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    token = page_token_of(html)  # the sign-out form: a POST body, never a URL
    links = re.findall(r'href="(/[^"]*lc=[^"]+)"', html)
    assert links and all("sid=" not in link and token not in link for link in links)
    # the page token works in the header (scripts) and as the POST field (forms)
    assert client.get("/learner/", headers={"User-Agent": FIREFOX,
                                            auth.SESSION_HEADER: token}).status_code == 200
    # a token in the query string is never read
    assert client.get("/learner/", query_string={"sid": token},
                      headers={"User-Agent": FIREFOX}).status_code == 401
    # the launch code is spent
    assert "already used" in enter(client, location).get_data(as_text=True)


def test_each_link_has_its_own_code_and_each_is_spent_once(client, db, moodle, key):
    html = enter(client, framed_launch(client, moodle, key)).get_data(as_text=True)
    links = [link.replace("&amp;", "&") for link in re.findall(r'href="(/[^"]*lc=[^"]+)"',
                                                               html)]
    codes = [query_of(link)["lc"] for link in links]
    assert len(set(codes)) == len(codes) >= 2
    first = enter(client, links[0], **{"Sec-Fetch-Site": "same-origin"})
    assert first.status_code == 200
    assert enter(client, links[0], **{"Sec-Fetch-Site": "same-origin"}).status_code == 401
    # another link of the same page still works: a download never spends its neighbours
    assert enter(client, links[1], **{"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_a_page_code_followed_from_another_site_is_refused_and_spent(client, db, moodle, key):
    html = enter(client, framed_launch(client, moodle, key)).get_data(as_text=True)
    link = re.findall(r'href="(/[^"]*lc=[^"]+)"', html)[0].replace("&amp;", "&")
    refused = enter(client, link, **{"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 401 and "another site" in refused.get_data(as_text=True)
    assert enter(client, link, **{"Sec-Fetch-Site": "same-origin"}).status_code == 401


def test_a_forged_or_tampered_code_is_refused(client, db, moodle, key):
    location = framed_launch(client, moodle, key)
    code = query_of(location)["lc"]
    kind, number, expires, nonce, mac = code.split(".")
    for bad in (f"{kind}.{int(number) + 1}.{expires}.{nonce}.{mac}",
                f"{kind}.{number}.{int(expires) + 999}.{nonce}.{mac}", "x" * 300, "a.b.c"):
        reply = client.get("/learner/", query_string={"lc": bad}, headers={"User-Agent": FIREFOX})
        assert reply.status_code == 401 and "not valid" in reply.get_data(as_text=True)
    assert enter(client, location).status_code == 200  # the genuine code is still unspent


def test_a_code_or_token_taken_to_another_browser_does_not_work(client, db, moodle, key):
    location = framed_launch(client, moodle, key, agent=FIREFOX)
    stolen = enter(client, location, agent=CHROME)
    assert stolen.status_code == 401
    assert "another browser" in stolen.get_data(as_text=True)
    location = framed_launch(client, moodle, key, agent=FIREFOX)
    token = page_token_of(enter(client, location, agent=FIREFOX).get_data(as_text=True))
    other = client.get("/learner/", headers={"User-Agent": CHROME, auth.SESSION_HEADER: token})
    assert other.status_code == 401
    # another network (the /24 differs) is another client too
    moved = client.get("/learner/", headers={"User-Agent": FIREFOX, auth.SESSION_HEADER: token},
                       environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert moved.status_code == 401
    same_net = client.get("/learner/", headers={"User-Agent": FIREFOX,
                                                auth.SESSION_HEADER: token},
                          environ_base={"REMOTE_ADDR": "127.0.0.99"})
    assert same_net.status_code == 200


def test_a_link_never_replaces_the_cookie_session(client, db, moodle, key):
    """Session fixation: the attacker's code, token or form never takes over the victim's.

    The attacker is an instructor, the victim a learner: the footer names whose session
    served each request (and the attacker's would get a 403 on the learner page)."""
    attacker = framed_launch(client, moodle, key, fixture=INSTRUCTOR, sub="attacker")
    attacker_token = page_token_of(enter(client, framed_launch(
        client, moodle, key, fixture=INSTRUCTOR, sub="attacker")).get_data(as_text=True))
    # the victim launches in a new window: a first-party cookie session
    claims = fixture_claims("moodle/id_token_student_resource_link.json", moodle)
    claims.update(sub="victim")
    assert login_and_launch(client, moodle, key, claims,
                            launch_headers={"User-Agent": FIREFOX}).status_code == 303
    for reply in (
        client.get(attacker.replace("/instructor/", "/learner/"),
                   headers={"User-Agent": FIREFOX}),
        client.get("/learner/", query_string={"sid": attacker_token},
                   headers={"User-Agent": FIREFOX}),
        client.get("/learner/", headers={"User-Agent": FIREFOX,
                                         auth.SESSION_HEADER: attacker_token}),
        client.post("/session/logout", data={"sid": attacker_token},
                    headers={"User-Agent": FIREFOX}),
    ):
        html = reply.get_data(as_text=True)
        if reply.request.method == "POST":  # the victim's session, without its CSRF token
            assert reply.status_code == 403
            continue
        assert reply.status_code == 200 and "(learner)" in html, html[:300]
    # the attacker's code reached the tool, so it is spent as well
    drop_session_cookies(client)
    assert enter(client, attacker).status_code == 401
    db.expire_all()
    assert db.scalar(select(WebSession.revoked_at).where(
        WebSession.role == "instructor").limit(1)) is None


def test_a_form_posted_from_another_site_cannot_bring_a_session(client, db, moodle, key):
    token = page_token_of(enter(client, framed_launch(client, moodle, key)).get_data(
        as_text=True))
    forged = client.post("/session/logout", data={"sid": token},
                         headers={"User-Agent": FIREFOX, "Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 401
    assert client.get("/learner/", headers={"User-Agent": FIREFOX,
                                            auth.SESSION_HEADER: token}).status_code == 200


def test_sliding_expiry_and_the_absolute_limit(client, db, moodle, key):
    token = page_token_of(enter(client, framed_launch(client, moodle, key)).get_data(
        as_text=True))
    headers = {"User-Agent": FIREFOX, auth.SESSION_HEADER: token}
    row = db.scalar(select(WebSession))
    assert row.expires_at - row.created_at == auth.SESSION_IDLE
    assert row.absolute_expires_at - row.created_at == auth.SESSION_MAX
    # nearly idle for too long: a request pushes the deadline a whole idle period ahead
    db.execute(update(WebSession).values(expires_at=utcnow() + timedelta(minutes=2)))
    db.commit()
    assert client.get("/learner/", headers=headers).status_code == 200
    db.expire_all()
    assert db.scalar(select(WebSession.expires_at)) > utcnow() + auth.SESSION_IDLE - \
        timedelta(minutes=1)
    # never past the absolute limit
    db.execute(update(WebSession).values(absolute_expires_at=utcnow() + timedelta(minutes=5),
                                         expires_at=utcnow() + timedelta(minutes=2)))
    db.commit()
    assert client.get("/learner/", headers=headers).status_code == 200
    db.expire_all()
    assert db.scalar(select(WebSession.expires_at)) <= db.scalar(
        select(WebSession.absolute_expires_at))
    # idle past the deadline: expired
    db.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    reply = client.get("/learner/", headers=headers)
    assert reply.status_code == 401 and "expired" in reply.get_data(as_text=True)


def test_logout_revokes_cookie_page_token_and_codes(app, client, db, moodle, key):
    claims = fixture_claims("moodle/id_token_student_resource_link.json", moodle)
    response = login_and_launch(client, moodle, key, claims,
                                launch_headers={"User-Agent": FIREFOX})
    home = client.get("/learner/", headers={"User-Agent": FIREFOX}).get_data(as_text=True)
    assert "Sign out" in home
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home).group(1)
    session_id = db.scalar(select(WebSession.id))
    with app.app_context():
        unspent = auth.mint_code(session_id, "launch")
    out = client.post("/session/logout", data={"csrf_token": csrf},
                      headers={"User-Agent": FIREFOX})
    assert out.status_code == 200 and "You are signed out" in out.get_data(as_text=True)
    assert any(c.startswith(auth.COOKIE_NAME + "=;") for c in out.headers.getlist("Set-Cookie"))
    assert response.status_code == 303
    db.expire_all()
    assert db.scalar(select(WebSession.revoked_at)) is not None
    drop_session_cookies(client)
    reply = client.get("/learner/", query_string={"lc": unspent},
                       headers={"User-Agent": FIREFOX})
    assert reply.status_code == 401 and "signed out" in reply.get_data(as_text=True)


def test_logout_needs_the_csrf_token(client, db, moodle, key):
    claims = fixture_claims("moodle/id_token_student_resource_link.json", moodle)
    login_and_launch(client, moodle, key, claims, launch_headers={"User-Agent": FIREFOX})
    assert client.post("/session/logout", headers={"User-Agent": FIREFOX}).status_code == 403
    db.expire_all()
    assert db.scalar(select(WebSession.revoked_at)) is None


def test_revoke_person_ends_every_session(client, db, moodle, key):
    for _ in range(2):
        framed_launch(client, moodle, key)
    person_id = db.scalar(select(WebSession.person_id))
    assert auth.revoke_person(db, person_id) == 2
    db.commit()


# --- frame-ancestors ------------------------------------------------------------------------

def test_a_session_page_may_be_framed_only_by_its_platform(client, db, moodle, canvas, key):
    location = framed_launch(client, moodle, key)
    reply = enter(client, location)
    policy = reply.headers["Content-Security-Policy"]
    assert policy == "frame-ancestors 'self' http://127.0.0.1:8100"
    assert "*" not in policy and "canvas" not in policy
    assert "X-Frame-Options" not in reply.headers  # it cannot name the platform's origin


def test_login_and_error_pages_are_framed_by_registered_platforms_only(client, db, moodle,
                                                                       canvas):
    login = client.post("/lti/login", data={
        "iss": moodle.issuer, "login_hint": "1", "client_id": moodle.client_id,
        "target_link_uri": "http://127.0.0.1:8000/lti/launch"},
        headers={"Sec-Fetch-Dest": "iframe"})
    assert login.headers["Content-Security-Policy"] == \
        "frame-ancestors 'self' http://127.0.0.1:8100"
    refused = client.get("/learner/")
    policy = refused.headers["Content-Security-Policy"]
    assert refused.status_code == 401 and "*" not in policy
    assert set(policy.split()[2:]) == {"http://127.0.0.1:8100", "https://canvas.instructure.com",
                                       "https://sso.canvaslms.com"}


def test_without_any_registration_nothing_else_may_frame(client, db):
    reply = client.get("/learner/")
    assert reply.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert reply.headers["X-Frame-Options"] == "SAMEORIGIN"


# --- access logs ------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "expected"), [
    ("GET /learner/?lc=l.1.2.abc.def&show=failed HTTP/1.1",
     "GET /learner/?lc=[redacted]&show=failed HTTP/1.1"),
    ("GET /lti/login?iss=x&login_hint=secret HTTP/1.1", "GET /lti/login?[redacted] HTTP/1.1"),
    ("GET /lti/register?openid_configuration=u&registration_token=t HTTP/1.1",
     "GET /lti/register?[redacted] HTTP/1.1"),
    ("GET /admin/?sid=stolen HTTP/1.1", "GET /admin/?sid=[redacted] HTTP/1.1"),
    ("GET /credentials/abc HTTP/1.1", "GET /credentials/abc HTTP/1.1"),
])
def test_request_lines_are_redacted(line, expected):
    assert redact_request_line(line) == expected


@given(name=st.sampled_from(sorted(SECRET_PARAMS)),
       value=st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122), min_size=6),
       path=st.sampled_from(["/learner/", "/admin/audit", "/lti/launch", "/x"]))
def test_no_secret_value_survives_redaction(name, value, path):
    secret = "ZQX" + value
    url = f"https://tool.example{path}?q=1&{name}={secret}"
    assert "ZQX" not in redact_url(url)


def test_the_demo_server_logs_no_code(app, caplog):
    from werkzeug.serving import make_server

    from lti_tool.web.accesslog import RedactingRequestHandler

    server = make_server("127.0.0.1", 0, app, threaded=True,
                         request_handler=RedactingRequestHandler)
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            for path in ("/learner/?lc=l.1.9.SECRETNONCE.mac", "/lti/register?invite=SECRETINV"):
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}{path}")
    finally:
        server.shutdown()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/learner/?lc=[redacted]" in logged and "/lti/register?[redacted]" in logged
    assert "SECRET" not in logged


def test_gunicorn_access_log_of_lti_tool_serve_has_no_secrets(tmp_path):
    """The real `lti-tool serve` (gunicorn) on a free port."""
    with socket.socket() as probe:  # a port nobody else holds (fixed ports collide in parallel)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": sys.path[0] if sys.path[0] else ".",
           "LTI_TOOL_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
           "LTI_TOOL_DATA_DIR": str(tmp_path / "instance"),
           "LTI_TOOL_BASE_URL": f"http://127.0.0.1:{port}"}
    import os

    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", os.getcwd())
    proc = subprocess.Popen([sys.executable, "-m", "lti_tool.cli", "serve", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90  # gunicorn's start on a loaded 2-core machine
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        for path, referer in (
            ("/learner/?lc=l.1.9.SECRETNONCE.mac", f"http://127.0.0.1:{port}/x?lc=SECRETREF"),
            ("/lti/register?registration_token=SECRETTOKEN&openid_configuration=x", "-"),
            ("/lti/login?iss=x&login_hint=SECRETHINT", "-"),
        ):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                             headers={"Referer": referer})
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=5)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert '"GET /learner/?lc=[redacted] HTTP/1.1" 401' in output, output[-2000:]
    assert "/lti/register?[redacted]" in output and "/lti/login?[redacted]" in output
    assert "lc=[redacted]\"" in output or "x?lc=[redacted]" in output
    assert "SECRET" not in output, output[-2000:]
