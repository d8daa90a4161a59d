"""Plain-word names of the Design Plan's codes, in the reader's language (en, tr).

One place for them: the Office's pages and the public credential page both show codes as
names. Values are lazy strings, translated when rendered. The annual report, rendered outside a
request with the catalogue of its own language (reports/render.py), reads the plain messages
(`KIND_MESSAGES`) of the same names.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l


def N_(text: str) -> str:
    """Marks a message for the catalogue (pybabel's default keyword); translated where shown."""
    return text


# The kinds of micro-credential (rules.KINDS) and the domains of an outcome (rules.OUTCOME_DOMAINS).
KIND_MESSAGES = {
    "course": N_("a course of its own"),
    "embedded": N_("embedded in a course"),
}
KIND = {key: _l(message) for key, message in KIND_MESSAGES.items()}
DOMAIN = {
    "knowledge": _l("knowledge"),
    "skill": _l("skill"),
    "competence": _l("competence"),
}
# Art. 6/2-e: face-to-face, online or hybrid (rules.PARTICIPATION_FORMS).
PARTICIPATION = {
    "online": _l("online"),
    "in_person": _l("in person (face-to-face)"),
    "blended": _l("blended (online and in person)"),
}
# Annex I: supervision and identity verification during assessment (rules.SUPERVISION).
SUPERVISION = {
    "unsupervised_no_id": _l("unsupervised, with no identity verification"),
    "supervised_no_id": _l("supervised, with no identity verification"),
    "supervised_online_id": _l("supervised online, with identity verification"),
    "supervised_onsite_id": _l("supervised onsite, with identity verification"),
}
QF_EHEA_CYCLES = {
    "short": _l("short cycle (QF-EHEA)"),
    "first": _l("first cycle (QF-EHEA)"),
    "second": _l("second cycle (QF-EHEA)"),
    "third": _l("third cycle (QF-EHEA)"),
}
LEARNING_SETTINGS = {
    "formal": _l("formal learning"),
    "non_formal": _l("non-formal learning"),
}
OVERALL_RESULTS = {
    "pass_fail": _l("passed or not passed"),
    "lowest_level": _l("the lowest level reached over the required outcomes"),
}
RESULT_PASSED = _l("Passed")
# Names of the mandatory Annex I elements (rules.ANNEX_MANDATORY), for "incomplete" notices.
ANNEX_ELEMENTS = {
    "title": _l("title"),
    "learning outcomes": _l("learning outcomes"),
    "notional workload": _l("notional workload"),
    "EQF level": _l("EQF level"),
    "type of assessment": _l("type of assessment"),
    "form of participation": _l("form of participation"),
    "type of quality assurance": _l("type of quality assurance"),
}


def annex_names(missing: list[str]) -> list[str]:
    """The names of missing Annex I elements (rules.annex_gaps) in the page's language."""
    return [str(ANNEX_ELEMENTS.get(name, name)) for name in missing]
