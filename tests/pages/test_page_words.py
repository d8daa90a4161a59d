"""Every HTML page in English and Turkish, in a cross-site iframe: what a person reads.

Fails on a notice shown twice, a raw code of the known vocabularies (statuses, kinds, domains,
policies, LMS kinds, audit actions), an ISO date in visible text, an English message left in
the Turkish page, and learner navigation on the public pages of a signed-in browser.
Screenshots of each page in both languages go to test-artifacts/pages/words-*.png.
"""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from lti_tool.domain import catalogue as rules
from lti_tool.store.models.core import LMS_KINDS
from lti_tool.web.jinja import AUDIT_ACTION_LABELS, STATUS_LABELS
from tests.pages.conftest import entry_code, frame_from
from tests.pages.test_browser import open_in_lms, shoot, tool_url
from tests.pages.test_translations import PO

pytestmark = pytest.mark.browser

ISO_DATE = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2})?")
# Codes with an underscore or a dot never read as words; plain ones ("draft") may, so only
# the multi-part codes and the audit actions count as raw.
RAW_CODES = sorted({code for code in (*STATUS_LABELS, *rules.KINDS, *rules.OUTCOME_DOMAINS,
                                      *rules.PARTICIPATION_FORMS, *LMS_KINDS,
                                      "learner_request", "auto_accept")
                    if "_" in code} | set(AUDIT_ACTION_LABELS))
RAW = re.compile(r"(?<![\w.])(?:" + "|".join(map(re.escape, RAW_CODES)) + r")(?![\w.])")
# On a Turkish page a value cell holding nothing but a plain code ("other", "draft") shows the
# code itself (in English some of them are their own label, "knowledge").
PLAIN_CODES = {code for code in (*STATUS_LABELS, *rules.KINDS, *rules.OUTCOME_DOMAINS,
                                 *rules.PARTICIPATION_FORMS, *LMS_KINDS) if "_" not in code}
CELLS = "td, dd, li, option, .status"
# A sentence's own full stop followed by the separator of the next value ("data.: Advanced").
DOUBLED = re.compile(r"[.?!]:\s")
PUBLIC_LINK_PAGES = {"reports.stakeholder_feedback", "reports.follow_up_link"}
# Visible words only: what code samples, form values and hidden helpers hold is data.
VISIBLE_TEXT = """() => {
  // Hide them on the live page and read its innerText (a detached clone has no layout, so
  // its innerText would glue a label to its value: "Issued2026-12-02").
  const style = document.createElement('style');
  style.textContent = 'code, pre, script, style, [hidden], .visually-hidden, textarea, select'
      + ' { display: none !important; }';
  document.head.appendChild(style);
  const text = document.body.innerText;
  style.remove();
  return text;
}"""


def _english_messages() -> list[str]:
    """Turkish-translated messages of a few words and no placeholder: seen verbatim on a
    Turkish page, they were left untranslated."""
    with PO.open("rb") as handle:
        catalogue = read_po(handle)
    return sorted({m.id for m in catalogue if isinstance(m.id, str) and m.string
                   and m.string != m.id and "%" not in m.id and len(m.id.split()) >= 3})


def test_every_page_reads_in_words_in_both_languages(app, page, live_url, lms_origin, story,
                                                     db) -> None:
    from tests.pages.test_browser import html_pages

    frame_from(db, lms_origin)
    english = _english_messages()
    problems: dict[str, list[str]] = {}
    pages = html_pages(app, story, db)
    assert len(pages) >= 8
    for endpoint, who, path in sorted(pages):
        # credential, issuer and verification pages; the e-mailed feedback and follow-up links
        public = endpoint.startswith("public.") or endpoint in PUBLIC_LINK_PAGES
        for lang in ("en", "tr"):
            frame = open_in_lms(page, lms_origin, tool_url(
                live_url, path, lc=entry_code(app, story.tokens[who]), lang=lang))
            name = f"{endpoint} {lang}"
            found = problems.setdefault(name, [])
            text = frame.evaluate(VISIBLE_TEXT)
            notices = [n.strip() for n in frame.locator(".notice, [role=status]").all_inner_texts()
                       if n.strip()]
            if len(notices) != len(set(notices)):
                found.append(f"notice shown twice: {notices}")
            found += [f"raw code {m!r}" for m in sorted(set(RAW.findall(text)))]
            found += [f"ISO date {m!r}" for m in sorted(set(ISO_DATE.findall(text)))]
            cells = {c.strip() for c in frame.locator(CELLS).all_inner_texts()}
            found += [f"language or country code {c!r}" for c in sorted(cells)
                      if c in rules.LANGUAGES or re.fullmatch(r"[A-Z]{2}", c)]
            found += [f"doubled punctuation {line.strip()[:60]!r}" for line in text.splitlines()
                      if DOUBLED.search(line)]
            if lang == "tr":
                found += [f"English: {m!r}" for m in english if m in text]
                found += [f"plain code {c!r}" for c in sorted(cells & PLAIN_CODES)]
                assert frame.locator("html").get_attribute("lang") == "tr", name
            if public and frame.locator(".role-nav, .sign-out").count():
                found.append("session navigation on a public page")
            shoot(page, "words-" + endpoint.replace(".", "-") + "-" + lang)
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())
