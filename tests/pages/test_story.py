"""The whole story in Chromium, from the practice LMS (`lti-tool demo`, built on lti1p3platform).

An instructor places and opens the micro-credential, syncs the gradebook, maps the outcomes; the
marks already in the LMS make a learner pass and the badges area issues his credential; he
claims and downloads it; its public page verifies it; the Office revokes it; his page and the
public page then say revoked. Every step goes through the pages, inside an iframe on another
origin. That iframe is same-site (127.0.0.1, other port): the practice LMS offers no LTI
platform storage, so a cookie-less launch in a cross-site frame ends, by design, on the
"open in a new window" fallback, which the first step checks. Pages themselves work cross-site
and cookie-less (see test_browser.py).
Only two steps are not done through a browser: the example micro-credential is imported and
approved through the catalogue service (the demo's own seed does that), and the Office's
session is started directly, because the practice course has no administrator to launch as.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from lti_tool.catalogue import service as catalogue
from lti_tool.demo_seed import practice_course
from lti_tool.store.db import transaction
from lti_tool.store.models.core import Context, Person, Platform
from lti_tool.web.auth import start_session
from tests.pages.conftest import ARTIFACTS, _embedding_page, _Server, entry_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / \
    "data-literacy-for-engineers.yaml"
# The practice course's users (lti_tool.demo_seed). Ayşe (4) already holds the credential the
# demo seeds; Mehmet (5) has 74/100 on "Essay 1", which passes once outcomes are mapped to it.
INSTRUCTOR, MEHMET = "3", "5"


@pytest.fixture
def same_site_lms() -> str:
    server = _Server(_embedding_page)
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture
def demo(tmp_path, monkeypatch, lms_origin, same_site_lms):
    from lti_tool.demo import start_demo

    # The stand-in course pages frame the practice LMS's launches: as a Canvas school's host
    # differs from its issuer, the operator names them.
    monkeypatch.setenv("LTI_TOOL_FRAME_ANCESTORS", f"{lms_origin},{same_site_lms}")
    running = start_demo(directory=tmp_path, port=0, lms_port=0)
    yield running
    running.stop()


def approve_example(demo) -> None:
    """The Office's part before the story: the Design Plan imported and approved (the demo's
    own seed may have done it already)."""
    with transaction(demo.runtime.sessions) as db:
        platform = db.query(Platform).one()
        plan = catalogue.plan_from_document(db, platform.id, yaml.safe_load(EXAMPLE.read_text()))
        if catalogue.find_by_code(db, platform.id, plan.code) is not None:
            return
        version = catalogue.create(db, platform.id, plan, catalogue.CLI)
        catalogue.act(db, platform.id, version.id, "submit", catalogue.CLI)
        catalogue.act(db, platform.id, version.id, "approve", catalogue.CLI)


class Lms:
    """The stand-in LMS course page framing the tool; launches go through the practice LMS."""

    def __init__(self, page, embedder: str, demo) -> None:
        self.page, self.embedder, self.demo = page, embedder, demo

    def open(self, url: str):
        self.page.goto(f"{self.embedder}/?src={quote(url, safe='')}")
        self.page.wait_for_load_state("networkidle")
        return self.tool()

    def launch(self, user: str, message: str = "resource_link"):
        self.open(f"{self.demo.lms_url}/launch?user={user}&message={message}")
        return self.settled()

    def settled(self):
        """A page that shows a running sync reloads itself when it ends (tool.js): wait for
        that, so the next click is not lost to the reload."""
        self.tool().locator("#sync-running").wait_for(state="detached", timeout=60_000)
        self.page.wait_for_load_state("networkidle")
        return self.tool()

    def tool(self):
        return self.page.frames[1]

    def follow(self, action):
        """Click and wait for the framed tool to settle on its next page."""
        with self.tool().expect_navigation():
            action()
        self.page.wait_for_load_state("networkidle")
        return self.tool()

    def shot(self, name: str) -> None:
        frame = self.tool()
        height = frame.evaluate("document.documentElement.scrollHeight")
        self.page.evaluate("h => { document.getElementById('tool').style.height = h + 'px' }",
                           height + 20)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"story-{name}.png"), full_page=True)


def test_the_whole_story(browser, demo, lms_origin, same_site_lms) -> None:
    approve_example(demo)
    context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                  accept_downloads=True)
    page = context.new_page()
    # 0. cross-site and cookie-less, the launch offers a new window (no platform storage here)
    blocked = Lms(page, lms_origin, demo).launch(INSTRUCTOR)
    assert "Open in a new window" in blocked.locator("main").inner_text()
    lms = Lms(page, same_site_lms, demo)

    # 1. the instructor places the micro-credential (deep linking) and opens the tool
    frame = lms.launch(INSTRUCTOR, "deep_linking")
    frame.locator("input[name=item]").first.check()
    lms.follow(frame.get_by_role("button", name="Add to the course").click)
    frame = lms.launch(INSTRUCTOR)
    assert frame.locator("h1").inner_text() == "Course overview"
    assert "Data Literacy for Engineers" in frame.locator("main").inner_text()

    # 2. marks arrive: Sync now reads the practice LMS's gradebook (AGS, NRPS)
    frame.locator("summary", has_text="Sync now").click()
    lms.follow(frame.get_by_role("button", name="Yes: Sync now").click)
    frame = lms.launch(INSTRUCTOR)
    assert "4 items, 18 marks" in frame.locator("main").inner_text()

    # 3. the instructor maps every outcome to "Essay 1" and saves: learners are evaluated
    frame = lms.follow(frame.get_by_role("link", name="Map outcomes").click)
    for outcome in yaml.safe_load(EXAMPLE.read_text())["outcomes"]:
        # the first gradebook source of each outcome is "Essay 1"
        frame.locator(f"input[name^='w|{outcome['code']}|grade_item|']").first.fill("1")
    lms.shot("mapping")
    lms.follow(frame.get_by_role("button", name="Save as a new version").click)
    frame = lms.launch(INSTRUCTOR)
    mehmet = frame.locator("table.grid tr", has_text="Mehmet Demir").inner_text()
    assert "passed" in mehmet and "Proficient" in mehmet
    issued = frame.locator("dt", has_text="Badges issued").locator(
        "xpath=following-sibling::dd[1]").inner_text()
    assert int(issued.split()[0]) >= 1
    lms.shot("instructor-after-mapping")

    # 4. Mehmet opens the tool: passed, his badge is there; he accepts and downloads it
    frame = lms.launch(MEHMET)
    main = frame.locator("main").inner_text()
    assert "passed" in main and "Your badge" in main
    frame = lms.follow(frame.get_by_role("button", name="Accept my badge").click)
    assert "You accepted your credential." in frame.locator("main").inner_text()
    with page.expect_download() as download_info:
        frame.get_by_role("link", name="JSON (Open Badges 3.0)").click()
    document = json.loads(Path(download_info.value.path()).read_text())
    assert "OpenBadgeCredential" in document["type"]
    assert document["credentialSubject"]["achievement"]["name"] == "Data Literacy for Engineers"
    public_url = frame.locator("input[type=url][readonly]").input_value()
    assert public_url.startswith(demo.tool_url + "/credentials/") and "sid=" not in public_url
    lms.shot("learner-badge")

    # 5. anyone can verify it on its public page
    verifier = context.new_page()
    verifier.goto(public_url)
    assert verifier.locator(".status", has_text="Valid").count() >= 1

    # 6. the Office revokes it, with a reason
    public_id = public_url.rsplit("/", 1)[1]
    with transaction(demo.runtime.sessions) as db:
        platform = db.query(Platform).one()
        course = db.query(Context).filter_by(platform_id=platform.id,
                                             context_id=practice_course().context_id).one()
        office = Person(platform_id=platform.id, sub="office-1", name="Office Officer")
        db.add(office)
        db.flush()
        token = start_session(db, platform_id=platform.id, person_id=office.id,
                              context_id=course.id, resource_link_id=None, role="admin")
    tool_app = demo.tool_server.app
    # Mehmet's session cookie (same-site here) would win over any code in a URL: a link never
    # replaces the browser's session (session fixation). The Office works in a fresh browser.
    context.clear_cookies()
    frame = lms.open(f"{demo.tool_url}/admin/credentials/{public_id}?lc="
                     f"{entry_code(tool_app, token)}")
    frame.fill("#reason", "Assessment misconduct found after issuing.")
    lms.follow(frame.get_by_role("button", name="Revoke this credential").click)
    frame = lms.open(f"{demo.tool_url}/admin/?lc={entry_code(tool_app, token)}")
    assert ", 1 revoked." in frame.locator("main").inner_text()  # Ayşe's stays valid

    # 7. Mehmet's page and the public page now say revoked
    frame = lms.launch(MEHMET)
    main = frame.locator("main").inner_text()
    assert "Revoked on" in main and "Assessment misconduct" in main
    lms.shot("learner-revoked")
    verifier.reload()
    assert verifier.locator(".status", has_text="Revoked").count() >= 1
    context.close()
