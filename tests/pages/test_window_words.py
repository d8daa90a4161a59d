"""An assessment window's closing date reads "closes on" while it is to come and "closed on"
once it has passed, on the instructor's and the learner's home pages, in both languages
(the one rule: `lti_tool.web.jinja.closing_passed`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.web.jinja import closing_passed
from testkit.seed import seed_course, seed_offering
from tests.conftest import session_headers


def _html(client, token: str, path: str, lang: str) -> str:
    reply = client.get(path, headers=session_headers(token), query_string={"lang": lang})
    assert reply.status_code == 200, reply.get_data(True)[:500]
    return reply.get_data(as_text=True)


def _close_in(db, course, days: int) -> None:
    db.get(Offering, course.offering_id).window_closes_at = utcnow() + timedelta(days=days)
    db.commit()


# (page, language): the words around the date while it is to come, and once it has passed
WORDS = {
    ("instructor", "en"): (("closes on ",), ("closed on ",)),
    ("instructor", "tr"): (("tarihinde kapanıyor",), ("tarihinde kapandı",)),
    ("learner", "en"): (("assessment closes on ",), ("assessment closed on ",)),
    ("learner", "tr"): (("değerlendirme ", "tarihinde kapanıyor"),
                        ("değerlendirme ", "tarihinde kapandı")),
}
VERBS = {"en": ("closes on ", "closed on "), "tr": ("tarihinde kapanıyor", "tarihinde kapandı")}


@pytest.mark.parametrize("lang", ["en", "tr"])
@pytest.mark.parametrize("page", ["instructor", "learner"])
def test_closing_date_to_come_and_passed(client, db, page: str, lang: str) -> None:
    course = seed_offering(db, seed_course(db, learners=1))
    token = course.tokens["instructor" if page == "instructor" else "learner1"]
    to_come, passed = WORDS[page, lang]
    future_verb, past_verb = VERBS[lang]

    _close_in(db, course, 20)
    html = _html(client, token, f"/{page}/", lang)
    assert all(words in html for words in to_come) and past_verb not in html

    _close_in(db, course, -1)
    html = _html(client, token, f"/{page}/", lang)
    assert all(words in html for words in passed) and future_verb not in html


def test_the_closing_moment_itself_is_passed() -> None:
    now = utcnow()
    assert closing_passed(now, now) and closing_passed(now - timedelta(seconds=1), now)
    assert not closing_passed(now + timedelta(seconds=1), now)
    assert not closing_passed(None, now)
