"""The public credential page's account of the EU micro-credential elements, in plain words.

Read from the signed document (what every verifier sees), in the reader's language: dates and
numbers by Babel, countries and languages by their names, and every code (EU vocabulary IRIs,
the plan's codes in credentials issued before the 2.0.0 context) by its name. Elements the
credential does not state are left out, never filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from babel import Locale
from flask_babel import format_date, format_decimal, get_locale
from flask_babel import gettext as _

from lti_tool.badges import vocabularies as vocab
from lti_tool.catalogue import labels

_TABLES = {"participation": labels.PARTICIPATION, "learning_setting": labels.LEARNING_SETTINGS,
           "supervision": labels.SUPERVISION, "qf_ehea_cycle": labels.QF_EHEA_CYCLES}


@dataclass(frozen=True)
class Element:
    label: str
    value: str
    items: tuple[str, ...] = ()


def _locale() -> Locale:
    return get_locale() or Locale.parse("en")


def country_name(code: str) -> str:
    return _locale().territories.get(code.upper(), code) if code else ""


def language_name(code: str) -> str:
    return _locale().languages.get(code, code) if code else ""


def code_name(value: str, table: str) -> str:
    """The name of an EU or tool vocabulary IRI, or of a plain code (older credentials)."""
    found = vocab.concept_by_iri(value)
    names = _TABLES[table]
    if found is not None:
        return str(_TABLES[found[0]][found[1]])
    return str(names.get(value, value))


def _number(value: object) -> str:
    try:
        return format_decimal(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return str(value)


def date_text(value: str) -> str:
    """An ISO date-time as a date in the page's language ('' for none)."""
    if not value:
        return ""
    try:
        return format_date(datetime.fromisoformat(value.replace("Z", "+00:00")), "long")
    except ValueError:
        return value


def _profile(profile: dict) -> str:
    address = profile.get("address") or {}
    country = country_name(address.get("addressCountryCode", ""))
    identifiers = [entry.get("identifier", "") for entry in profile.get("otherIdentifier", [])
                   if entry.get("identifierType") == "ext:LegalIdentifier"]
    parts = [part for part in (country, *identifiers) if part]
    return f"{profile.get('name', '')} ({', '.join(parts)})" if parts else profile.get("name", "")


def _levels(achievement: dict) -> str:
    found = []
    for alignment in achievement.get("alignment", []):
        kind = alignment.get("targetType")
        if kind == "ext:EQF":
            found.append(_("EQF level %(n)s", n=alignment.get("targetCode", "")))
        elif kind == "ext:TQF":
            found.append(_("TQF level %(n)s", n=alignment.get("targetCode", "")))
    if cycle := achievement.get("qfEheaCycle"):
        found.append(code_name(cycle, "qf_ehea_cycle"))
    return "; ".join(found)


def _field_of_study(achievement: dict) -> str:
    text = achievement.get("fieldOfStudy", "")
    codes = [a.get("targetCode", "") for a in achievement.get("alignment", [])
             if a.get("targetType") == "ext:ISCED-F"]
    return f"{text} (ISCED-F {codes[0]})" if text and codes else text


def overall_result(document: dict) -> str:
    """The overall result the credential states, in words ('' when it states none)."""
    subject = document["credentialSubject"]
    achievement = subject["achievement"]
    descriptions = {d["id"]: d for d in achievement.get("resultDescription", [])}
    for result in subject.get("result", []):
        description = descriptions.get(result.get("resultDescription", ""))
        if description is None or not description["id"].endswith("#overall"):
            continue
        if result.get("status") == "Completed":
            return str(labels.RESULT_PASSED)
        for level in description.get("rubricCriterionLevel", []):
            if level["id"] == result.get("achievedLevel"):
                return level["name"]
    return ""


def annex_elements(document: dict, recipient: str) -> list[Element]:
    """Every Annex I element the credential states, with its name, in the page's language."""
    subject = document["credentialSubject"]
    achievement = subject["achievement"]
    issuer = document["issuer"]
    address = issuer.get("address") or {}
    country = achievement.get("awardingBodyCountry") or address.get("addressCountryCode", "")
    region = achievement.get("awardingBodyRegion") or address.get("addressRegion", "")
    bodies = [_profile(issuer)] + [_profile(b) for b in achievement.get("coAwardingBody", [])]
    workload = _("%(hours)s hours", hours=_number(achievement.get("notionalWorkloadHours", "")))
    if "creditsAvailable" in achievement:
        workload += " · " + _("%(ects)s ECTS",
                              ects=_number(achievement["creditsAvailable"]))
    rows: list[Element | None] = [
        Element(_("Learner"), recipient) if recipient else None,
        Element(_("Title"), achievement.get("name", "")),
        Element(_("Country and region of the awarding body"),
                ", ".join(p for p in (country_name(country), region) if p)),
        Element(_("Awarding body") if len(bodies) == 1 else _("Awarding bodies"), "",
                tuple(bodies)),
        Element(_("Date of issue"), date_text(document.get("validFrom", ""))),
        Element(_("Notional workload"), workload),
        Element(_("Level"), _levels(achievement)),
        Element(_("Type of assessment"), achievement.get("assessmentType", "")),
        Element(_("Form of participation"), "; ".join(
            code_name(value, table) for value, table in (
                (achievement.get("participationForm", ""), "participation"),
                (achievement.get("learningSetting", ""), "learning_setting")) if value)),
        Element(_("Type of quality assurance"), achievement.get("qualityAssurance", "")),
        Element(_("Field of study"), _field_of_study(achievement)),
        Element(_("Language"), language_name(achievement.get("inLanguage", ""))),
        Element(_("Prerequisites"), achievement.get("prerequisites", "")),
        Element(_("Supervision and identity verification"),
                code_name(achievement.get("supervisionVerification", ""), "supervision")),
        Element(_("Overall result"), overall_result(document)),
        Element(_("Integration and stackability"), "", tuple(
            t for t in (achievement.get("stackability", ""), achievement.get("recognition", ""))
            if t)),
        Element(_("Further information"), achievement.get("furtherInformation", "")),
    ]
    return [row for row in rows if row is not None and (row.value or row.items)]
