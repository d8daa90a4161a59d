"""The quality cycle's pages (reports area) in headless Chromium: the report, survey and
feedback pages (inside the LMS iframe where they belong to a role), checked with axe in English
and Turkish; screenshots in test-artifacts/pages/."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from lti_tool.reports import surveys
from lti_tool.store.models.badges import Credential
from lti_tool.web.auth import start_session
from tests.pages.conftest import ARTIFACTS, entry_code, frame_from
from tests.pages.test_browser import axe_problems, follow, open_in_lms, shoot, tool_url
from tests.reports.seed import YEAR, seed_year

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["en", "tr"])
def test_the_report_pages_pass_axe_in_both_languages(app, page, live_url, lms_origin, db, lang
                                                     ) -> None:
    seeded = seed_year(db)
    token = start_session(db, platform_id=seeded.platform_id,
                          person_id=seeded.people["office"], context_id=None,
                          resource_link_id=None, role="admin", locale=lang)
    link = surveys.create_link(db, institution_id=seeded.institution_id,
                               platform_id=seeded.platform_id,
                               mc_id=seeded.mcs["DATA-101"], label="Acme")
    db.commit()
    frame_from(db, lms_origin)  # the registration's LMS is the page that frames the tool
    found = {}
    for name, path, args in [("office-report", "/admin/report", {"year": YEAR}),
                             ("office-survey-questions", "/admin/surveys", {}),
                             ("office-feedback-links", "/admin/feedback-links", {})]:
        frame = open_in_lms(page, lms_origin, tool_url(
            live_url, path, lc=entry_code(app, token), lang=lang, **args))
        assert frame.locator("h1").count() == 1
        assert frame.locator("html").get_attribute("lang") == lang
        shoot(page, f"{name}-{lang}")
        found[name] = axe_problems(frame)
    # The report page: its charts carry text equivalents and the PDF is one click away.
    frame = open_in_lms(page, lms_origin, tool_url(
        live_url, "/admin/report", lc=entry_code(app, token), lang=lang, year=YEAR))
    assert frame.locator("figure img[alt]").count() == 3
    words = {"en": "Sustainability and stakeholder engagement",
             "tr": "Sürdürülebilirlik ve paydaş katılımı"}[lang]
    assert words in frame.locator("main").inner_text()
    page.goto(tool_url(live_url, "/admin/report", lc=entry_code(app, token), lang=lang, year=YEAR))
    page.screenshot(path=str(ARTIFACTS / f"office-report-whole-{lang}.png"), full_page=True)
    # The public stakeholder page, opened directly (no LMS, no session).
    page.goto(f"{live_url}/feedback/{link.token}?lang={lang}")
    assert page.locator("html").get_attribute("lang") == lang
    shoot(page, f"stakeholder-feedback-{lang}")
    found["stakeholder-feedback"] = axe_problems(page.main_frame)
    assert not any(found.values()), json.dumps(found, indent=1)


@pytest.mark.parametrize("lang", ["en", "tr"])
def test_the_learner_survey_passes_axe_and_works_with_the_keyboard(
        app, page, live_url, lms_origin, db, story, settings, lang) -> None:
    from datetime import UTC, datetime, timedelta

    credential = db.scalar(select(Credential))
    credential.issued_at = datetime.now(UTC) - timedelta(days=190)
    db.commit()
    frame_from(db, lms_origin)
    frame = open_in_lms(page, lms_origin, tool_url(
        live_url, "/learner/", lc=entry_code(app, story.tokens["learner2"]), lang=lang))
    follow(frame, frame.locator("form[action*='/accept'] button").click)
    assert frame.locator("section.survey").count() == 2  # the 6-month follow-up and the survey
    shoot(page, f"learner-survey-{lang}")
    problems = axe_problems(frame)
    assert not problems, json.dumps(problems, indent=1)
    frame.locator("input[name=q1][value='5']").check()
    frame.locator("textarea[name=comment]").fill("Clear rubric.")
    follow(frame, frame.locator("button[name=action][value=answer]").click)
    assert frame.locator("section.survey").count() == 1
    follow_up = db.scalar(select(surveys.FollowUp))
    page.goto(f"{live_url}/follow-up/{surveys.follow_up_token(settings, follow_up)}"
              f"?lang={lang}")
    shoot(page, f"follow-up-public-{lang}")
    assert not axe_problems(page.main_frame)
