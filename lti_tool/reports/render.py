"""The annual report as HTML, PDF (WeasyPrint), CSV and JSON, in English or Turkish.

Rendering uses its own Jinja environment with the tool's Babel catalogue, so the CLI and the
Office page produce the same document without a web request. Charts are server-side SVG
(matplotlib), each with a text equivalent: a caption that states what it shows and the table of
the same figures beside it.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from lti_tool.catalogue.labels import KIND_MESSAGES, N_
from lti_tool.domain import reports as figures
from lti_tool.domain.surveys import EMPLOYABILITY_OUTCOMES, FEEDBACK_THEMES
from lti_tool.reports.service import Report, report_json

TRANSLATIONS = Path(__file__).resolve().parent.parent / "web" / "translations"
LANGUAGES = ("en", "tr")
FORMATS = ("html", "pdf", "csv", "json")


DIMENSION_LABELS = {
    "policy_strategy": N_("Policy and strategy"),
    "instructional_design": N_("Instructional design"),
    "assessment_certification": N_("Assessment and certification"),
    "sustainability_engagement": N_("Sustainability and stakeholder engagement"),
}
OUTCOME_LABELS = {
    "new_job": N_("new job"), "promotion": N_("promotion"), "application": N_("application"),
    "recognised_credit": N_("recognised credit"), "not_yet": N_("not yet"),
}
THEME_LABELS = {
    "relevance": N_("relevance to work"), "skills_gap": N_("skills gap"),
    "workload": N_("workload"), "recognition": N_("recognition"),
    "assessment": N_("assessment"), "delivery": N_("delivery"), "other": N_("other"),
}
FORM_LABELS = {"online": N_("online"), "in_person": N_("in person"), "blended": N_("blended"),
               "unspecified": N_("not given")}
STATUS_LABELS = {"draft": N_("draft"), "in_review": N_("in review"), "approved": N_("approved"),
                 "lapsed": N_("revalidation overdue"), "retired": N_("retired")}
ACTION_STATUS_LABELS = {"planned": N_("planned"), "in_progress": N_("in progress"),
                        "done": N_("done"), "dropped": N_("dropped")}
CHANGE_LABELS = {
    "participation.enrolled": N_("Enrolled"), "participation.assessed": N_("Assessed"),
    "success.passed": N_("Passed"), "success.pass_rate": N_("Pass rate"),
    "reevaluation.granted": N_("Re-evaluations granted"),
    "credentials.issued": N_("Credentials issued"),
    "satisfaction.responses": N_("Satisfaction responses"),
    "employability.response_rate": N_("Follow-up response rate"),
    "stakeholders.n": N_("Stakeholder answers"),
}
RATE_KEYS = ("success.pass_rate", "employability.response_rate")


@cache
def translations(lang: str) -> NullTranslations:
    """The catalogue of `lang` (English, the source strings, when there is none)."""
    return Translations.load(str(TRANSLATIONS), [lang], domain="messages")


@cache
def _percent_pattern(lang: str) -> str:
    """The language's percent pattern with one optional decimal ('%72,7' in Turkish)."""
    pattern = Locale.parse(lang).percent_formats[None].pattern
    return pattern.replace("#,##0", "#,##0.#", 1)


class Formatter:
    """Numbers, rates, dates and withheld cells in the report's language."""

    def __init__(self, lang: str, min_cell: int) -> None:
        self.lang, self.min_cell = lang, min_cell
        self.gettext = translations(lang).gettext

    def withheld(self) -> str:
        return self.gettext("fewer than %(n)s") % {"n": self.min_cell}

    def num(self, value: Any) -> str:
        if figures.is_suppressed(value):
            return self.withheld()
        if value is None:
            return "—"
        return format_decimal(value, locale=self.lang)

    def pct(self, value: Any) -> str:
        if figures.is_suppressed(value):
            return self.withheld()
        if value is None:
            return "—"
        return format_percent(value, _percent_pattern(self.lang), locale=self.lang)

    def change(self, value: Any, rate: bool = False) -> str:
        if figures.is_suppressed(value):
            return self.withheld()
        if value is None:
            return "—"
        if rate:
            points = format_decimal(round(value * 100, 1), locale=self.lang)
            sign = "+" if value > 0 else ""
            return self.gettext("%(sign)s%(points)s points") % {"sign": sign, "points": points}
        return ("+" if value > 0 else "") + format_decimal(value, locale=self.lang)

    def date(self, iso: str) -> str:
        return format_date(date.fromisoformat(iso), "medium", locale=self.lang)

    def label(self, table: dict, key: str) -> str:
        return self.gettext(table.get(key, key))


# --- Charts -------------------------------------------------------------------------------


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    svg = buffer.getvalue()
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9,
                         "svg.hashsalt": "lti-tool", "svg.fonttype": "none"})
    return plt


def charts(report: Report, fmt: Formatter) -> dict[str, dict]:
    """{name: {"src": data URI, "alt": text}}; a chart whose figures are withheld is left out."""
    plt = _pyplot()
    _ = fmt.gettext
    result: dict[str, dict] = {}
    mcs = list(report.figures["per_mc"].values())[:60]
    if mcs:
        codes = [f["mc"]["code"] for f in mcs]
        rates_now = [f["success"]["pass_rate"] or 0 for f in mcs]
        before = {f["mc"]["code"]: f for f in report.previous["per_mc"].values()}
        rates_before = [(before[c]["success"]["pass_rate"] or 0) if c in before else 0
                        for c in codes]
        fig, ax = plt.subplots(figsize=(7, 0.32 * len(codes) + 1.2))
        positions = range(len(codes))
        ax.barh([p + 0.2 for p in positions], [r * 100 for r in rates_now], height=0.4,
                color="#1f5fa8", label=str(report.year))
        ax.barh([p - 0.2 for p in positions], [r * 100 for r in rates_before], height=0.4,
                color="#9bb7d9", hatch="//", label=str(report.year - 1))
        ax.set_yticks(list(positions), codes)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel(_("Pass rate (%)"))
        ax.legend(loc="lower right")
        result["pass_rates"] = {"src": _svg(fig), "alt": _(
            "Bar chart of the pass rate of each micro-credential in %(year)s beside "
            "%(previous)s; the table 'Success' gives the same figures.") % {
                "year": report.year, "previous": report.year - 1}}
    overall = report.figures["overall"]
    items = [(q, overall["satisfaction"]["items"].get(q.code)) for q in report.questions
             if q.kind == "likert"]
    items = [(q, item) for q, item in items
             if item and not figures.is_suppressed(item["n"]) and item["n"]]
    if items:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(items) + 1.2))
        colours = ("#b2182b", "#ef8a62", "#d9d9d9", "#67a9cf", "#2166ac")
        for row, (_q, item) in enumerate(items):
            left = 0.0
            for value, colour in zip(("1", "2", "3", "4", "5"), colours, strict=True):
                share = item["distribution"][value] / item["n"] * 100
                ax.barh(row, share, left=left, color=colour,
                        label=value if row == 0 else None)
                left += share
        ax.set_yticks(range(len(items)), [q.code for q, _i in items])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel(_("Share of answers (%), 1 = strongly disagree, 5 = strongly agree"))
        ax.legend(ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
        result["satisfaction"] = {"src": _svg(fig), "alt": _(
            "Stacked bars of the answers to each satisfaction item, from 1 (strongly disagree) "
            "to 5 (strongly agree); the table 'Satisfaction' gives the same figures.")}
    employability = overall["employability"]
    if not figures.is_suppressed(employability["answered"]) and employability["answered"]:
        fig, ax = plt.subplots(figsize=(7, 2.6))
        labels = [fmt.label(OUTCOME_LABELS, o) for o in EMPLOYABILITY_OUTCOMES]
        ax.barh(labels, [employability["outcomes"][o] for o in EMPLOYABILITY_OUTCOMES],
                color="#1b7837")
        ax.invert_yaxis()
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(_("Answers"))
        result["employability"] = {"src": _svg(fig), "alt": _(
            "Bar chart of how holders used their micro-credential, from the follow-ups; the "
            "table 'Employability' gives the same figures.")}
    return result


# --- Documents ----------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("lti_tool.reports", "templates"),
                      autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    return env


def render_html(report: Report, lang: str = "en", *, fragment: bool = False) -> str:
    """The report as a complete HTML document (or, `fragment`, its body for the Office page)."""
    lang = lang if lang in LANGUAGES else "en"
    env = _environment().overlay()
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    fmt = Formatter(lang, report.min_cell)
    template = env.get_template("reports/report.html")
    return template.render(
        r=report, f=report.figures, o=report.figures["overall"], fmt=fmt, lang=lang,
        fragment=fragment, charts=charts(report, fmt), dimensions=figures.DIMENSIONS,
        labels={"dimension": DIMENSION_LABELS, "outcome": OUTCOME_LABELS,
                # the kind reads as on the Office's Design Plan form (catalogue/labels.py)
                "theme": THEME_LABELS, "kind": KIND_MESSAGES, "form": FORM_LABELS,
                "status": STATUS_LABELS, "action_status": ACTION_STATUS_LABELS,
                "change": CHANGE_LABELS},
        rate_keys=RATE_KEYS, outcomes=EMPLOYABILITY_OUTCOMES, themes=FEEDBACK_THEMES,
        suppressed=figures.is_suppressed, Markup=Markup)


def render_pdf(report: Report, lang: str = "en") -> bytes:
    from weasyprint import HTML

    return HTML(string=render_html(report, lang)).write_pdf()


def _rows(scope: str, value: object, path: tuple[str, ...]):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _rows(scope, inner, (*path, str(key)))
    elif not isinstance(value, list):
        yield scope, path, value


def render_csv(report: Report) -> str:
    """One row per figure: year, scope (overall or MC code), dimension, figure, value,
    suppressed. Withheld figures have an empty value and `suppressed` = true."""
    section_dimension = {s: d for d, sections in figures.DIMENSIONS for s in sections}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["year", "scope", "dimension", "figure", "value", "suppressed"])
    scopes = [("overall", report.figures["overall"])] + [
        (f["mc"]["code"], {k: v for k, v in f.items() if k != "mc"})
        for f in report.figures["per_mc"].values()]
    for scope, data in scopes:
        for _scope, path, value in _rows(scope, data, ()):
            hidden = figures.is_suppressed(value)
            writer.writerow([report.year, scope, section_dimension.get(path[0], ""),
                             ".".join(path), "" if hidden or value is None else value,
                             "true" if hidden else "false"])
    changes = [("overall", report.changes["overall"])] + [
        (report.figures["per_mc"][m]["mc"]["code"], c)
        for m, c in report.changes["per_mc"].items()]
    for scope, data in changes:
        for key, entry in data.items():
            value = entry["change"]
            hidden = figures.is_suppressed(value)
            writer.writerow([report.year, scope, "sustainability_engagement",
                             f"year_on_year.{key}", "" if hidden or value is None else value,
                             "true" if hidden else "false"])
    return out.getvalue()


def render_json(report: Report) -> str:
    return json.dumps(report_json(report), ensure_ascii=False, indent=2, sort_keys=True)


def render(report: Report, fmt: str, lang: str = "en") -> bytes:
    if fmt == "pdf":
        return render_pdf(report, lang)
    if fmt == "csv":
        return render_csv(report).encode()
    if fmt == "json":
        return render_json(report).encode()
    return render_html(report, lang).encode()
