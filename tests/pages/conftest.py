"""Fixtures for the pages' tests (seeding lives in testkit/seed.py, shared with bench/)."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from testkit.seed import Course, seed_course, seed_offering, seed_story
from tests.conftest import skip_unless_installed


@pytest.fixture
def course(db) -> Course:
    return seed_course(db)


@pytest.fixture
def offered(db, course) -> Course:
    return seed_offering(db, course)


@pytest.fixture
def story(db, settings) -> Course:
    """learner1 failed, learner2 passed with a badge, learner3 not yet assessed."""
    return seed_story(db, settings)


# --- Browser fixtures (tests marked `browser`) ------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"
AXE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def playwright_driver():
    if not Path(CHROMIUM).exists():
        skip_unless_installed("Debian's chromium (/usr/bin/chromium)")
    if not AXE.is_file():
        skip_unless_installed("axe-core (run `npm ci` in tests/node)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver):
    """One headless Chromium for the session. Its default profile blocks third-party cookies."""
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    yield context.new_page()
    context.close()


class _Server:
    """A WSGI app served on 127.0.0.1 from a thread, for the browser to reach."""

    def __init__(self, wsgi_app) -> None:
        self.httpd = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_url(app) -> Iterator[str]:
    """The tool, live at http://127.0.0.1:PORT (the origin the LMS iframe points to)."""
    server = _Server(app)
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def _embedding_page(environ, start_response):
    """A stand-in LMS course page on another site that shows `?src=` in an iframe."""
    from urllib.parse import parse_qs

    src = parse_qs(environ.get("QUERY_STRING", "")).get("src", [""])[0]
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>LMS course</title>'
        '</head><body><h1 style="font:16px sans-serif">Course page (LMS)</h1>'
        f'<iframe id="tool" title="Micro-credentials tool" src="{html.escape(src)}" '
        'style="width:1200px;height:880px;border:1px solid #888"></iframe></body></html>'
    ).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [body]


@pytest.fixture(scope="session")
def lms_origin() -> Iterator[str]:
    """http://localhost:PORT: another site than 127.0.0.1, so the tool's iframe is cross-site."""
    server = _Server(_embedding_page)
    yield f"http://localhost:{server.port}"
    server.stop()


def entry_code(app, token: str) -> str:
    """A one-time launch code for a session, as the launch's redirect to a framed page carries
    (the session token itself never goes in a URL)."""
    from sqlalchemy.orm import Session as OrmSession

    from lti_tool.web.auth import mint_code, session_id_for

    with app.app_context(), OrmSession(app.extensions["lti_tool"].engine) as db:
        session_id = session_id_for(db, token)
        assert session_id is not None
        return mint_code(session_id, "launch")


def frame_from(db, origin: str) -> None:
    """Make every registration's platform live at `origin`, which may then frame the tool."""
    from lti_tool.store.models.core import Platform

    for platform in db.query(Platform):
        platform.issuer = f"{origin}/{platform.id}"  # (issuer, client_id) stays unique
        platform.auth_login_url = origin + "/auth"
    db.commit()
