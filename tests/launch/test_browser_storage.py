"""The cookie-less launch in a real browser: the tool in a cross-site LMS iframe.

The LMS page (on http://localhost:PORT, another site than the tool's 127.0.0.1) implements the
LTI Client Side postMessage storage and an OIDC auth endpoint; the tool's cookies are
third-party there, so the state cookie never comes back and the launch has to go through
`lti.put_data` / `lti.get_data` and /lti/launch/confirm, i.e. the pages' JavaScript.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from flask import Flask, request
from sqlalchemy import select

from lti_tool.store.models.core import WebSession
from testkit.lti import basic_claims, platform_key, register_platform, sign
from tests.launch.browser import PLATFORM_STORAGE_JS, Served, chromium_browser

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    with chromium_browser() as browser:
        yield browser


def _lms_app(state: dict) -> Flask:
    """A stand-in LMS: a course page embedding the tool, platform storage and /auth."""
    lms = Flask("stand_in_lms")

    @lms.get("/course")
    def course() -> str:
        src = html.escape(state["login_url"])
        return (f'<!doctype html><html lang="en"><head><title>Course</title></head><body>'
                f'<iframe name="tool" src="{src}" width="900" height="600"></iframe>'
                f"<script>{PLATFORM_STORAGE_JS}</script></body></html>")

    @lms.get("/auth")
    def auth() -> str:
        claims = {**state["claims"], "nonce": request.args["nonce"]}
        fields = {"id_token": sign(claims, state["key"]), "state": request.args["state"]}
        inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                         for k, v in fields.items())
        action = html.escape(request.args["redirect_uri"])
        return (f'<form id="f" method="post" action="{action}">{inputs}</form>'
                '<script>document.getElementById("f").submit()</script>')

    return lms


@pytest.fixture
def stack(app, db) -> Iterator[dict]:
    """The tool on 127.0.0.1 and the LMS on localhost, both live."""
    state: dict = {"key": platform_key("browser")}
    tool = Served(app, "127.0.0.1")
    app.config["LTI_SETTINGS"] = dataclasses.replace(app.config["LTI_SETTINGS"],
                                                     base_url=tool.url)
    lms = Served(_lms_app(state), "localhost")
    platform = register_platform(db, issuer=lms.url, client_id="browser-client",
                                 key=state["key"], auth_login_url=lms.url + "/auth")
    claims = basic_claims(platform, role="Learner")
    claims["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] = tool.url + "/lti/launch"
    state.update(claims=claims, tool=tool.url, lms=lms.url, platform=platform)
    yield state
    lms.stop()
    tool.stop()


def _login_url(state: dict, **extra: str) -> str:
    params = {"iss": state["lms"], "client_id": "browser-client", "login_hint": "u1",
              "target_link_uri": state["tool"] + "/lti/launch", **extra}
    return state["tool"] + "/lti/login?" + urlencode(params)


def test_framed_launch_without_cookies_completes_through_platform_storage(chromium, stack, db):
    stack["login_url"] = _login_url(stack, lti_storage_target="_parent")
    context = chromium.new_context()
    page = context.new_page()
    page.goto(stack["lms"] + "/course")
    frame = page.frame(name="tool")
    frame.wait_for_url("**/learner/**", timeout=15000)
    assert "/learner/" in frame.url and "lc=" in frame.url, frame.url
    assert frame.locator("h1").inner_text() == "My micro-credentials"
    assert page.evaluate("window.ltiLog") == ["lti.put_data", "lti.get_data"]
    db.expire_all()
    assert db.scalar(select(WebSession.role)) == "learner"
    context.close()


def test_framed_login_with_blocked_cookies_offers_a_new_window(chromium, stack, db):
    stack["login_url"] = _login_url(stack)
    context = chromium.new_context()
    page = context.new_page()
    page.goto(stack["lms"] + "/course")
    frame = page.frame(name="tool")
    link = frame.get_by_role("link", name="Open in a new window")
    link.wait_for(timeout=10000)
    assert link.get_attribute("target") == "_blank"
    assert "/lti/login?" in link.get_attribute("href")
    context.close()
