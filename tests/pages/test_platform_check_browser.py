"""The Office's "Test connection" in Chromium, inside a cross-site, cookie-less LMS iframe: the
button posts, the findings show in words, the page passes axe (screenshot in the artifacts).

The registration's LMS here is the stand-in course page, which is no LMS at all: the tool may
not call loopback hosts, so every check is refused, which is what the findings must say."""

from __future__ import annotations

import json

import pytest

from tests.pages.conftest import entry_code, frame_from
from tests.pages.test_browser import axe_problems, follow, open_in_lms, shoot, tool_url

pytestmark = pytest.mark.browser


@pytest.fixture
def story(story, db, lms_origin):
    """The story's registration on the stand-in LMS's origin (the only one that may frame)."""
    frame_from(db, lms_origin)
    return story


@pytest.mark.parametrize("lang", ["en", "tr"])
def test_test_connection_in_the_lms_iframe(app, page, live_url, lms_origin, story, lang) -> None:
    code = entry_code(app, story.tokens["admin"])
    frame = open_in_lms(page, lms_origin, tool_url(
        live_url, f"/admin/platforms/{story.platform_id}", lc=code, lang=lang))
    button = frame.get_by_role("button", name="Test connection" if lang == "en"
                               else "Bağlantıyı sına")
    follow(frame, button.click)
    frame = page.frames[1]
    results = frame.locator(".check-results")
    text = results.inner_text()
    assert ("checks need attention" if lang == "en" else "denetim dikkat gerektiriyor") in text
    assert ("Needs attention" if lang == "en" else "Dikkat gerekiyor") in text
    assert frame.locator(".check-results tbody tr").count() >= 5
    shoot(page, f"office-platform-check-{lang}")
    problems = axe_problems(frame)
    assert not problems, json.dumps(problems, indent=1)
