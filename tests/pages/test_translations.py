"""Turkish is complete and every number and date on a page goes through Babel.

The catalogue test extracts the messages of lti_tool/ afresh (as scripts/i18n.sh does), so a
new `_()` string without a Turkish msgstr fails here, not in a Turkish user's browser.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "lti_tool/web/translations/tr/LC_MESSAGES/messages.po"
# Formatting a moment or number by hand instead of through Babel (`when`, `number`, `percent`,
# `int_format`, ngettext): these show ISO dates or dot decimals in Turkish.
HAND_FORMATTING = re.compile(
    r"\.strftime\(|\.isoformat\(\)|(?:_at|_from|_until|_due)\[:1[06]\]|\|\s*round\b"
    r"|\"%\.\d+f\"|'%\.\d+f'|\|\s*format\("
    # a number handed to a message as it is: `_("from %(b)s%%", b=level.lower_bound)`
    r"|_\([\"'][^\"']*%\([a-z_]+\)s%%[\"'],\s*\w+=[\w.\[\]\"']+\s*\)")


def _messages(po: Path):
    with po.open("rb") as handle:
        return [m for m in read_po(handle) if m.id]


def test_every_extracted_message_has_a_turkish_translation(tmp_path) -> None:
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"),
                                "-k", "lazy_gettext", "-k", "_l", "-o", str(pot),
                                str(ROOT / "lti_tool")])
    translated = {m.id: m for m in _messages(PO)}
    missing = []
    for message in _messages(pot):
        found = translated.get(message.id)
        strings = found.string if found is not None else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if found is None or found.fuzzy or not all(s.strip() for s in strings):
            missing.append(message.id)
    assert not missing, f"{len(missing)} messages lack Turkish: {missing[:20]}"


def test_turkish_keeps_every_placeholder() -> None:
    placeholder = re.compile(r"%\((\w+)\)[sd]")
    wrong = []
    for message in _messages(PO):
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(placeholder.findall(ids[-1]))
        if any(s and set(placeholder.findall(s)) - wanted for s in strings):
            wrong.append(message.id)
    assert not wrong, wrong


def test_pages_format_numbers_and_dates_through_babel() -> None:
    found = []
    for template in sorted((ROOT / "lti_tool").rglob("*.html")):
        if "demo_templates" in template.parts:  # the practice LMS is an English stand-in
            continue
        for number, line in enumerate(template.read_text().splitlines(), 1):
            shown = " ".join(re.findall(r"\{\{(.*?)\}\}", line))  # output, not comparisons
            if HAND_FORMATTING.search(shown):
                found.append(f"{template.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not found, "\n".join(found)


# One Turkish word per thing: an issued credential is a "belge" (a micro-credential a "mikro
# yeterlilik"), an offering a "ders açılışı" (never "sunum", a presentation).
GLOSSARY = [
    (re.compile(r"(?<![-\w])credentials?\b", re.I), re.compile(r"micro-credential", re.I),
     re.compile(r"yeterlilik", re.I)),
    (re.compile(r"\bofferings?\b", re.I), None, re.compile(r"sunum", re.I)),
]


def test_turkish_uses_one_word_for_each_thing() -> None:
    wrong = []
    for message in _messages(PO):
        ids = " ".join(message.id if isinstance(message.id, tuple) else (message.id,))
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        text = " ".join(s for s in strings if s)
        for english, unless, turkish in GLOSSARY:
            if english.search(ids) and not (unless and unless.search(ids)) \
                    and turkish.search(text):
                wrong.append(f"{ids[:60]!r} -> {text[:60]!r}")
    assert not wrong, "\n".join(wrong)
