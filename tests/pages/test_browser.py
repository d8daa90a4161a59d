"""The pages in headless Chromium, inside a cross-site iframe like an LMS shows them.

The stand-in LMS page lives on http://localhost:PORT and frames the tool on
http://127.0.0.1:PORT2, another site. Chromium's default profile here blocks third-party
cookies, so the frames rely on the cookie-less session: each frame is opened with a one-time
entry code (as the launch's redirect carries one), then every link carries its own one-time code
and every form the page token; one test opens a profile that allows third-party cookies and
uses the session cookie instead. Screenshots go to test-artifacts/pages/.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from lti_tool.web.auth import COOKIE_NAME
from testkit.seed import seed_course, seed_decision, seed_offering
from tests.conftest import session_headers
from tests.pages.conftest import ARTIFACTS, AXE, CHROMIUM, CHROMIUM_ARGS, entry_code, frame_from

pytestmark = pytest.mark.browser
SERIOUS = ("serious", "critical")


def open_in_lms(page, lms_origin: str, url: str):
    """Load the LMS page framing `url`; return the tool's frame once it has loaded."""
    page.goto(f"{lms_origin}/?src={quote(url, safe='')}")
    frame = page.frame_locator("#tool")
    frame.locator("body").wait_for()
    return next(f for f in page.frames if f.url.startswith(url.split("?")[0]))


def follow(frame, action) -> None:
    """Run `action` (a click, a key press) and wait until the frame has loaded the next page."""
    with frame.expect_navigation():
        action()


def session_cookie(token: str) -> dict:
    """The tool's session cookie as an HTTPS deployment sets it (loopback counts as secure)."""
    return {"name": COOKIE_NAME, "value": token, "domain": "127.0.0.1", "path": "/",
            "sameSite": "None", "secure": True, "httpOnly": True}


def tool_url(live_url: str, path: str, **args) -> str:
    return f"{live_url}{path}?{urlencode(args)}" if args else f"{live_url}{path}"


def axe_problems(frame) -> list[dict]:
    """axe-core's serious and critical violations for the frame's document."""
    frame.add_script_tag(path=str(AXE))
    found = frame.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in SERIOUS]


def shoot(page, name: str) -> None:
    """Screenshot the LMS page with the tool's iframe grown to its whole content."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    frame = page.frames[1] if len(page.frames) > 1 else None
    if frame is not None:
        height = frame.evaluate("document.documentElement.scrollHeight")
        page.evaluate("h => { document.getElementById('tool').style.height = (h + 20) + 'px' }",
                      height)
        frame.wait_for_function("h => window.innerHeight >= h", arg=height)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def story(story, db, lms_origin):
    """The story, its registration on the stand-in LMS's origin (the only one that may frame
    its pages)."""
    frame_from(db, lms_origin)
    return story


PAGES = [
    ("learner-home", "learner1", "/learner/", {}),
    ("learner-home-badge", "learner2", "/learner/", {}),
    ("instructor-overview", "instructor", "/instructor/", {}),
    ("instructor-overview-filtered", "instructor", "/instructor/",
     {"show": "failed", "sort": "LO2", "dir": "desc"}),
    ("office-home", "admin", "/admin/", {}),
    ("office-audit", "admin", "/admin/audit", {"q": "approve"}),
    ("error-forbidden", "learner1", "/admin/", {}),
]


def test_pages_in_a_cross_site_iframe_pass_axe(app, page, live_url, lms_origin, story, db) -> None:
    from lti_tool.store.models.core import AuditEntry

    db.add(AuditEntry(platform_id=story.platform_id, actor_label="Office",
                      action="microcredential.approve", target="DATA-101"))
    db.commit()
    report = {}
    for name, who, path, args in PAGES:
        code = entry_code(app, story.tokens[who])
        frame = open_in_lms(page, lms_origin, tool_url(live_url, path, lc=code,
                                                      **args))
        if name != "error-forbidden":
            assert frame.locator("h1").count() == 1, name
        for details in frame.locator("details").all()[:3]:
            details.evaluate("d => d.open = true")  # check what is folded away too
        shoot(page, name)
        report[name] = axe_problems(frame)
    assert not any(report.values()), json.dumps(report, indent=1)


def test_third_party_cookies_are_blocked_and_codes_carry_the_session(
        app, page, live_url, lms_origin, story) -> None:
    token = story.tokens["instructor"]
    page.context.add_cookies([session_cookie(token)])
    assert page.context.cookies()[0]["name"] == COOKIE_NAME
    # the cookie alone does not reach the framed tool: the profile blocks it
    frame = open_in_lms(page, lms_origin, tool_url(live_url, "/instructor/"))
    assert "No LTI session" in frame.locator("main").inner_text()
    # with an entry code, every link (one-time code each) and form keeps working in the frame
    frame = open_in_lms(page, lms_origin, tool_url(live_url, "/instructor/",
                                                   lc=entry_code(app, token)))
    follow(frame, frame.get_by_role("link", name="LO2").click)
    assert frame.locator('th[aria-sort="ascending"]').inner_text().startswith("LO2")
    frame.select_option("#show", "passed")
    follow(frame, frame.get_by_role("button", name="Apply").click)
    rows = frame.locator("table.grid tbody tr")
    assert rows.count() == 1 and "Learner2" in rows.first.inner_text()
    assert "lc=" in frame.url and "sid=" not in frame.url and token not in frame.url
    assert token not in frame.content()
    shoot(page, "instructor-cookieless-after-filter")
    # a spent code is useless: the same URL again (a reload, a leaked log line) is refused
    spent = frame.url
    frame = open_in_lms(page, lms_origin, spent)
    assert "already used" in frame.locator("main").inner_text()


def test_session_cookie_works_in_the_iframe_when_the_browser_allows_it(
        playwright_driver, live_url, lms_origin, story) -> None:
    with tempfile.TemporaryDirectory() as profile:
        Path(profile, "Default").mkdir()
        Path(profile, "Default", "Preferences").write_text(
            json.dumps({"profile": {"cookie_controls_mode": 0}}))
        context = playwright_driver.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context.add_cookies([session_cookie(story.tokens["learner1"])])
            page = context.new_page()
            frame = open_in_lms(page, lms_origin, tool_url(live_url, "/learner/"))
            assert frame.locator("h1").inner_text() == "My micro-credentials"
            follow(frame, frame.get_by_role("link", name="Türkçe").click)
            assert frame.locator("html").get_attribute("lang") == "tr"
            assert "lc=" not in frame.url
        finally:
            context.close()


def test_keyboard_skip_link_focus_and_sorting(app, page, live_url, lms_origin, story) -> None:
    frame = open_in_lms(page, lms_origin, tool_url(live_url, "/instructor/",
                                                   lc=entry_code(app, story.tokens["instructor"])))
    page.keyboard.press("Tab")
    assert frame.evaluate("document.activeElement.className") == "skip-link"
    outline = frame.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    assert frame.evaluate("document.activeElement.id") == "main"
    # reach the LO2 sort link with Tab alone and sort with Enter
    for _ in range(60):
        page.keyboard.press("Tab")
        if frame.evaluate("document.activeElement.textContent.trim().startsWith('LO2')"):
            break
    else:
        pytest.fail("the LO2 column header cannot be reached with the keyboard")
    follow(frame, lambda: page.keyboard.press("Enter"))
    assert frame.locator('th[aria-sort="ascending"]').inner_text().startswith("LO2")


def test_locale_from_the_launch_and_from_the_switch(app, page, live_url, lms_origin, db) -> None:
    course = seed_offering(db, seed_course(db, locale="tr-TR", issuer=lms_origin))
    seed_decision(db, course, "learner1", [80, 60, None], status="failed")
    frame = open_in_lms(page, lms_origin, tool_url(live_url, "/learner/",
                                                   lc=entry_code(app, course.tokens["learner1"])))
    assert frame.locator("html").get_attribute("lang") == "tr"
    assert frame.locator("h1").inner_text() == "Mikro yeterliliklerim"
    shoot(page, "learner-home-tr")
    follow(frame, frame.get_by_role("link", name="English").click)
    assert frame.locator("h1").inner_text() == "My micro-credentials"
    follow(frame, frame.get_by_role("link", name="My micro-credentials").click)
    assert frame.locator("html").get_attribute("lang") == "en"


def html_pages(app, story, db) -> list[tuple[str, str, str]]:
    """(name, who, path) for every GET page of the app that answers HTML, for the role that may
    open it, with ids taken from the seeded story. Covers pages other areas add."""
    from lti_tool.store.models.badges import Credential
    from lti_tool.store.models.catalogue import Offering

    offering = db.get(Offering, story.offering_id)
    credential = db.query(Credential).first()
    ids = {"offering_id": offering.id, "version_id": offering.mc_version_id,
           "mc_id": offering.mc_version.micro_credential_id, "platform_id": story.platform_id,
           "public_id": credential.public_id, "person_id": story.people["learner1"]}
    ids_of = _token_pages(app, db, credential)  # the pages a link's token opens
    found = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static" or \
                rule.rule.endswith((".json", ".jwt", ".png", ".svg", ".csv", ".jsonld")):
            continue
        values = {**ids, **ids_of.get(rule.endpoint, {})}
        if any(name not in values for name in rule.arguments):
            continue
        roles = getattr(app.view_functions[rule.endpoint], "required_roles", None)
        who = "admin" if roles is None else next(
            (k for k in ("instructor", "admin", "learner1") if k.rstrip("1") in roles), None)
        if who is None:
            continue
        with app.test_request_context():
            path = app.url_map.bind("localhost").build(rule.endpoint, {
                name: values[name] for name in rule.arguments})
        reply = app.test_client().get(path, headers=session_headers(story.tokens[who]))
        if reply.status_code == 200 and reply.mimetype == "text/html":
            found.append((rule.endpoint, who, path))
    return found


def _token_pages(app, db, credential) -> dict[str, dict[str, str]]:
    """A stakeholder feedback link and a graduate's follow-up link, for their public pages."""
    import secrets
    from datetime import timedelta

    from lti_tool.reports import surveys
    from lti_tool.store.db import utcnow
    from lti_tool.store.models.catalogue import MicroCredentialVersion
    from lti_tool.store.models.reports import FollowUp

    version = db.get(MicroCredentialVersion, credential.mc_version_id)
    institution_id = version.micro_credential.institution_id
    link = surveys.create_link(db, institution_id=institution_id,
                               platform_id=credential.platform_id,
                               mc_id=version.micro_credential_id, label="Employers 2026")
    follow_up = FollowUp(institution_id=institution_id, platform_id=credential.platform_id,
                         credential_id=credential.id,
                         person_id=credential.person_id,
                         micro_credential_id=version.micro_credential_id, months=6,
                         due_at=utcnow() - timedelta(days=1), nonce=secrets.token_hex(16))
    db.add(follow_up)
    db.commit()
    token = surveys.follow_up_token(app.config["LTI_SETTINGS"], follow_up)
    return {"reports.stakeholder_feedback": {"token": link.token},
            "reports.follow_up_link": {"token": token}}


def test_axe_on_every_html_page_of_the_app(app, page, live_url, lms_origin, story, db) -> None:
    report = {}
    pages = html_pages(app, story, db)
    assert len(pages) >= 8
    for endpoint, who, path in sorted(pages):
        code = entry_code(app, story.tokens[who])
        frame = open_in_lms(page, lms_origin, tool_url(live_url, path, lc=code))
        problems = axe_problems(frame)
        if problems:
            report[f"{endpoint} {path}"] = problems
    assert not report, json.dumps(report, indent=1)
    print(f"axe checked {len(pages)} pages:", ", ".join(e for e, _w, _p in sorted(pages)))


def test_copy_link_and_accept_with_the_keyboard(app, page, live_url, lms_origin, story) -> None:
    frame = open_in_lms(page, lms_origin, tool_url(live_url, "/learner/",
                                                   lc=entry_code(app, story.tokens["learner2"])))
    frame.get_by_role("button", name="Copy link").focus()
    page.keyboard.press("Enter")
    assert frame.locator(".copy-status").inner_text() == "Link copied"
    frame.get_by_role("button", name="Accept my badge").focus()
    follow(frame, lambda: page.keyboard.press("Enter"))
    assert "You accepted your credential." in frame.locator("[role=status]").first.inner_text()


def test_public_page_never_shows_a_broken_badge_image(app, page, live_url, lms_origin, story,
                                                      db) -> None:
    """The plan's own image is on a server that does not answer: the tool's own face (title,
    level, awarding body) takes its place, and no rule is drawn above it."""
    import json as _json

    from lti_tool.store.models.badges import Credential

    credential = db.query(Credential).first()
    document = _json.loads(credential.document)
    document["credentialSubject"]["achievement"]["image"] = {
        "id": "http://127.0.0.1:9/badges/gone.png", "type": "Image"}
    credential.document = _json.dumps(document)
    db.commit()
    page.goto(f"{live_url}/credentials/{credential.public_id}")
    image = page.locator("img.badge-image")
    image.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.badge-image');"
        " return i.complete && i.naturalWidth > 0; }")
    assert image.get_attribute("src").startswith("data:image/svg+xml")
    assert page.evaluate("getComputedStyle(document.querySelector('main article'))"
                         ".borderTopStyle") == "none"
    shoot(page, "public-credential-image-fallback")


def test_office_hints_and_search_line_up_with_their_fields(app, page, live_url, lms_origin,
                                                          story) -> None:
    """A hint sits on its own line between its label and its field, at the field's left edge;
    the Office home's search button sits right after its box."""
    frame = open_in_lms(page, lms_origin, tool_url(
        live_url, "/admin/microcredentials/new", lc=entry_code(app, story.tokens["admin"])))
    boxes = frame.evaluate("""() => [...document.querySelectorAll('.field')]
      .filter(f => f.querySelector('.hint'))
      .map(f => { const box = e => e.getBoundingClientRect();
        const [l, h, c] = [f.querySelector('label'), f.querySelector('.hint'),
                           f.querySelector('input, select, textarea')].map(box);
        return {id: f.querySelector('label').htmlFor, ok: h.top >= l.bottom - 1 &&
                c.top >= h.bottom - 1 && Math.abs(h.left - c.left) < 2}; })""")
    assert len(boxes) >= 5 and all(b["ok"] for b in boxes), boxes
    frame = open_in_lms(page, lms_origin, tool_url(
        live_url, "/admin/", lc=entry_code(app, story.tokens["admin"])))
    field = frame.locator("#credential-q").bounding_box()
    button = frame.locator("form[role=search] button").bounding_box()
    assert 0 <= button["x"] - (field["x"] + field["width"]) < 16
    assert abs(button["y"] - field["y"]) < 6
    shoot(page, "office-home-search")
