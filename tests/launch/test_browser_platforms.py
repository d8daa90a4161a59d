"""Launches in Chromium exactly as Moodle and Canvas start them, third-party cookies blocked.

The tool runs on http://127.0.0.1:PORT, the stand-in platform on http://localhost:PORT2.
Browsers decide "third-party" by *site* (scheme and registrable domain; an IP address is its
own site; the port does not count), so localhost and 127.0.0.1 are two sites: inside the
platform's page every tool cookie is a third-party cookie, which this Chromium blocks
(`--test-third-party-cookie-phaseout`, like Chrome with third-party cookies off and Safari). The
other way round (platform on 127.0.0.1, tool on localhost) is the same situation; two ports of
one host would be first-party and hide the problem.

- Moodle, embedded: mod/lti/view.php shows `iframe#contentframe` (Moodle's attributes) whose
  src, launch.php, auto-POSTs `ltiInitiateLoginForm` to the tool's login URL inside the frame
  (Moodle 5.1's `lti_initiate_login`, `document_target` iframe). The person must see the tool or
  the fallback page whose "Open in a new window" completes the launch.
- Moodle, new window: launch.php opened top-level (Moodle's `window.open`), the same form.
- Canvas: the login form POSTs into `iframe#tool_content` with
  `lti_storage_target=post_message_forwarding`; the platform keeps the state through LTI
  platform storage (`lti.put_data` / `lti.get_data` answered by a `post_message_forwarding`
  frame of the platform).

Screenshots go to test-artifacts/launch/.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, request

from testkit.lti import (
    CAPTURED_MOODLE_HOST,
    fixture_claims,
    platform_key,
    register_platform,
    sign,
)
from tests.launch.browser import PLATFORM_STORAGE_JS, Served, chromium_browser
from tests.launch.conftest import CANVAS_HOST

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "launch"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
TOOL_ALLOW = "microphone {o}; camera {o}; geolocation {o}; midi {o}; encrypted-media {o}; " \
    "autoplay {o}"


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    with chromium_browser("--test-third-party-cookie-phaseout") as browser:
        yield browser


def _form(action: str, fields: dict, *, name: str, target: str | None = None) -> str:
    inputs = "".join(f'  <input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>\n'
                     for k, v in fields.items())
    target_attr = f' target="{target}"' if target else ""
    return (f'<form action="{html.escape(action)}" name="{name}" id="{name}" method="post" '
            f'encType="application/x-www-form-urlencoded"{target_attr}>\n{inputs}</form>\n'
            f'<script type="text/javascript">\n//<![CDATA[\ndocument.{name}.submit();\n//]]>\n'
            '</script>\n')


def _platform_app(state: dict) -> Flask:
    """Moodle's and Canvas's launch pages and an OIDC auth endpoint signing real id_tokens."""
    lms = Flask("stand_in_platform")

    def login_fields(**extra: str) -> dict:
        return {"iss": state["lms"], "target_link_uri": state["tool"] + "/lti/launch",
                "login_hint": "4", "lti_message_hint": '{"cmid":3,"launchid":"ltilaunch1_1"}',
                "client_id": state["client_id"], "lti_deployment_id": "1", **extra}

    @lms.get("/mod/lti/view.php")
    def moodle_view() -> str:
        allow = TOOL_ALLOW.format(o=state["tool"])
        return ('<!doctype html><html lang="en"><head><title>LTI101: Breakout</title></head>'
                '<body><h2>Breakout (LTI 1.3)</h2>'
                f'<iframe id="contentframe" height="600px" width="100%" '
                f'src="launch.php?id=3&amp;triggerview=0" allow="{allow}" allowfullscreen="1">'
                "</iframe></body></html>")

    @lms.get("/mod/lti/launch.php")
    def moodle_launch() -> str:
        return ("<!doctype html><html><body>"
                + _form(state["tool"] + "/lti/login", login_fields(),
                        name="ltiInitiateLoginForm") + "</body></html>")

    @lms.get("/courses/1/external_tools/5")
    def canvas_tool_page() -> str:
        fields = login_fields(lti_storage_target="post_message_forwarding",
                              canvas_region="not_configured", canvas_environment="prod")
        return ('<!doctype html><html lang="en"><head><title>Canvas course</title></head><body>'
                '<iframe name="post_message_forwarding" title="forwarding" '
                'src="/post_message_forwarding" hidden></iframe>'
                '<iframe name="tool_content" id="tool_content" class="tool_launch" '
                'title="Micro-credentials" allow="geolocation *; microphone *; camera *; '
                'midi *; encrypted-media *; autoplay *; clipboard-write *; display-capture *" '
                'allowfullscreen="allowfullscreen" data-lti-launch="true" '
                'style="width:1000px;height:640px"></iframe>'
                + _form(state["tool"] + "/lti/login", fields, name="tool_form",
                        target="tool_content") + "</body></html>")

    @lms.get("/post_message_forwarding")
    def forwarding() -> str:
        return f"<!doctype html><html><body><script>{PLATFORM_STORAGE_JS}</script></body></html>"

    @lms.get("/mod/lti/auth.php")
    def auth() -> str:
        state["auth_requests"] += 1
        claims = {**state["claims"], "nonce": request.args["nonce"]}
        fields = {"id_token": sign(claims, state["key"]), "state": request.args["state"]}
        return ("<!doctype html><html><body>"
                + _form(request.args["redirect_uri"], fields, name="ltiAuthForm")
                + "</body></html>")

    return lms


@pytest.fixture
def platform(app, db) -> Iterator[dict]:
    """The tool live on 127.0.0.1 and the stand-in platform on localhost (another site)."""
    state: dict = {"key": platform_key("browser-platform"), "client_id": "wIHNTU76CCVPeFh",
                   "auth_requests": 0}
    tool = Served(app, "127.0.0.1")
    app.config["LTI_SETTINGS"] = dataclasses.replace(app.config["LTI_SETTINGS"],
                                                     base_url=tool.url)
    lms = Served(_platform_app(state), "localhost")
    # the stand-in serves both the moodle/ and the canvas/ fixtures: record both LMS hosts
    registered = register_platform(db, issuer=lms.url, client_id=state["client_id"],
                                   key=state["key"], auth_login_url=lms.url + "/mod/lti/auth.php",
                                   lms_hosts=(CAPTURED_MOODLE_HOST, CANVAS_HOST))
    state.update(tool=tool.url, lms=lms.url, registration=registered)
    yield state
    lms.stop()
    tool.stop()


def _claims(state: dict, fixture: str) -> dict:
    claims = fixture_claims(fixture, state["registration"])
    claims[LTI + "target_link_uri"] = state["tool"] + "/lti/launch"
    return claims


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _tool_requests(context, state: dict) -> list[str]:
    seen: list[str] = []
    context.on("request", lambda r: seen.append(f"{r.method} {r.url.split('?')[0]}")
               if r.url.startswith(state["tool"]) else None)
    return seen


@pytest.mark.parametrize("who", ["student", "teacher"])
def test_moodle_embedded_launch_offers_a_new_window_that_completes(chromium, platform, who):
    fixture = ("moodle/id_token_student_resource_link_iframe.json" if who == "student"
               else "moodle/id_token_instructor_resource_link.json")
    platform["claims"] = _claims(platform, fixture)
    platform["claims"][LTI + "launch_presentation"] = {"document_target": "iframe"}
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.goto(platform["lms"] + "/mod/lti/view.php?id=3")
    frame = page.frame_locator("#contentframe")
    heading = frame.get_by_role("heading", name="Your browser blocks this tool inside the "
                                                "course page")
    heading.wait_for(timeout=15000)
    link = frame.get_by_role("link", name="Open in a new window")
    assert link.get_attribute("target") == "_blank"
    shoot(page, f"moodle-embedded-{who}-blocked")
    with context.expect_page() as opened:
        link.click()
    window = opened.value
    home = "/learner/" if who == "student" else "/instructor/"
    window.wait_for_url(f"**{home}**", timeout=15000)
    expected = "My micro-credentials" if who == "student" else "Course overview"
    assert window.locator("h1").first.inner_text() == expected
    # top-level, the first-party session cookie carries the session: no codes in the links
    assert "lc=" not in window.content()
    shoot(window, f"moodle-embedded-{who}-new-window")
    context.close()


def test_moodle_new_window_launch_completes_with_the_state_cookie(chromium, platform):
    platform["claims"] = _claims(platform, "moodle/id_token_student_resource_link.json")
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    seen = _tool_requests(context, platform)
    page = context.new_page()
    page.goto(platform["lms"] + "/mod/lti/launch.php?id=3&triggerview=0")
    page.wait_for_url("**/learner/**", timeout=15000)
    assert page.locator("h1").inner_text() == "My micro-credentials"
    # Chromium took the SameSite=None; Secure state cookie on http://127.0.0.1 (a secure
    # context), so the platform's cross-site POST carried it: no same-origin re-post needed
    assert seen.count(f"POST {platform['tool']}/lti/launch") == 1, seen
    shoot(page, "moodle-new-window-student")
    context.close()


def test_canvas_launch_keeps_its_state_in_platform_storage(chromium, platform, db):
    platform["claims"] = _claims(platform, "canvas/id_token_student_resource_link.json")
    platform["claims"][LTI + "deployment_id"] = "1"
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.goto(platform["lms"] + "/courses/1/external_tools/5")
    frame = page.frame(name="tool_content")
    frame.wait_for_url("**/learner/**", timeout=15000)
    assert frame.locator("h1").inner_text() == "Mikro yeterliliklerim"  # Canvas sends tr
    assert page.evaluate("window.ltiLog") == ["lti.put_data", "lti.get_data"]
    assert "lc=" in frame.url  # cookie-less: the launch code, spent by this very page
    # the framed tool keeps working: a link carries its own one-time code
    with frame.expect_navigation():
        frame.get_by_role("link", name="English").click()
    assert frame.locator("h1").inner_text() == "My micro-credentials"
    shoot(page, "canvas-platform-storage-student")
    context.close()
