"""Template helpers shared by every page: links that keep a cookie-less session, the language
switch, dates.

They are installed on the app by the pages' blueprints (`install`, via `record_once`) so that
the application factory stays untouched; error pages rendered outside a blueprint get them too.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from babel import Locale
from babel.numbers import get_decimal_symbol
from flask import current_app, g, request
from flask.blueprints import BlueprintSetupState
from flask.sansio.app import App
from flask_babel import format_date, format_number, format_time, get_locale, lazy_gettext
from flask_babel import gettext as _
from werkzeug.local import LocalProxy
from werkzeug.routing import BuildError

from lti_tool.domain.decisions import window_open
from lti_tool.store.db import utcnow
from lti_tool.web import auth
from lti_tool.web.i18n import SUPPORTED_LOCALES, remember_locale_choice
from lti_tool.web.notices import pop_notice

LOCALE_NAMES = {"en": "English", "tr": "Türkçe"}
ROLE_LABELS = {
    "learner": lazy_gettext("learner"),
    "instructor": lazy_gettext("instructor"),
    "admin": lazy_gettext("Micro-credentials Office"),
}


STATUS_LABELS = {
    # micro-credential versions
    "draft": lazy_gettext("draft"),
    "in_review": lazy_gettext("in review"),
    "approved": lazy_gettext("approved"),
    "lapsed": lazy_gettext("revalidation overdue"),
    "retired": lazy_gettext("retired"),
    # learner decisions
    "in_progress": lazy_gettext("in progress"),
    "passed": lazy_gettext("passed"),
    "failed": lazy_gettext("failed"),
    "reevaluation_granted": lazy_gettext("re-evaluation open"),
    "failed_final": lazy_gettext("failed after re-evaluation"),
    "not_assessed": lazy_gettext("not yet assessed"),
    # re-evaluation requests
    "pending": lazy_gettext("pending"),
    "granted": lazy_gettext("granted"),
    # credentials
    "active": lazy_gettext("valid"),
    "revoked": lazy_gettext("revoked"),
    "suspended": lazy_gettext("suspended"),
}


LMS_KIND_LABELS = {
    "moodle": lazy_gettext("Moodle"),
    "canvas": lazy_gettext("Canvas"),
    "other": lazy_gettext("another LMS"),
}


AUDIT_ACTION_LABELS = {
    "credential.revoke": lazy_gettext("revoked a credential"),
    "credential.accepted": lazy_gettext("accepted their credential"),
    "platform.register": lazy_gettext("registered a platform (Dynamic Registration)"),
    "platform.add": lazy_gettext("added a platform"),
    "platform.invite": lazy_gettext("made a registration invite"),
    "platform.remove": lazy_gettext("removed a platform"),
    "platform.auto_accept": lazy_gettext("changed whether new deployments are accepted"),
    "deployment.add": lazy_gettext("added a deployment"),
    "deployment.enable": lazy_gettext("enabled a deployment"),
    "deployment.disable": lazy_gettext("disabled a deployment"),
    "microcredential.create": lazy_gettext("created a micro-credential"),
    "microcredential.edit": lazy_gettext("edited a micro-credential"),
    "microcredential.submit": lazy_gettext("submitted a micro-credential for review"),
    "microcredential.reject": lazy_gettext("rejected a micro-credential (back to draft)"),
    "microcredential.approve": lazy_gettext("approved a micro-credential"),
    "microcredential.revalidate": lazy_gettext("revalidated a micro-credential"),
    "microcredential.lapse": lazy_gettext("marked a revalidation overdue"),
    "microcredential.retire": lazy_gettext("retired a micro-credential"),
}


def audit_label(action: str) -> str:
    """What an audit entry's action code means, in words (unknown codes made readable)."""
    label = AUDIT_ACTION_LABELS.get(action)
    return str(label) if label is not None else action.replace(".", " ").replace("_", " ")


def lms_kind_label(kind: str) -> str:
    return str(LMS_KIND_LABELS.get(kind, kind))


def language_name(code: str) -> str:
    """A language code ("en") as its name in the page's language ("İngilizce")."""
    locale = get_locale() or Locale.parse("en")
    return locale.languages.get(code, code) if code else "—"


def int_format(value: object) -> str:
    """A whole number in the page's language ("1.234" in Turkish)."""
    return format_number(value) if isinstance(value, int) else str(value)


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


def status_label(status: str) -> str:
    """Words for a status code, so colour is never the only signal."""
    return str(STATUS_LABELS.get(status, status.replace("_", " ")))


def status_labels() -> dict[str, str]:
    """Every status in words, translated once per page (big tables look them up per row)."""
    return {key: str(value) for key, value in STATUS_LABELS.items()}


def level_name(outcome: Any, code: str | None) -> str:
    """A rubric level's label ("Proficient") for its code, as the plan writes it."""
    for level in getattr(getattr(outcome, "rubric", None), "levels", ()):
        if level.code == code:
            return level.label
    return code or "—"


def optional_url(endpoint: str, **values: Any) -> str | None:
    """URL of another area's page, or None while that page does not exist (yet).

    Pages link to the catalogue, evaluation, sync and badges pages instead of duplicating them;
    this keeps a page rendering even when one of those endpoints is absent or needs other ids.
    """
    if endpoint not in current_app.view_functions:
        return None
    try:
        return auth.session_url(endpoint, **values)
    except BuildError:
        return None


def locale_switch_url(code: str) -> str:
    """The current page in another language, keeping every query parameter; a cookie-less
    page's link gets a fresh one-time session code instead of the spent one."""
    skip = ("lang", auth.CODE_PARAM, auth.SID_PARAM)
    args = [(key, value) for key, value in request.args.items(multi=True) if key not in skip]
    fresh = auth.page_code()
    if fresh:
        args.append((auth.CODE_PARAM, fresh))
    args.append(("lang", code))
    return f"{request.path}?{urlencode(args)}"


def when(value: datetime | str | None, kind: str = "datetime") -> str:
    """A date or moment in the page's language; an em dash for 'never'."""
    if value is None:
        return "—"
    if isinstance(value, str):  # an ISO moment from a signed document ("2026-12-01T10:00:00Z")
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if kind == "date":
        return format_date(value, "medium")
    return f"{format_date(value, 'medium')}, {format_time(value, 'short')}"


def closing_passed(closes_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a window's closing moment has come (the moment itself is closed, as in
    `domain.decisions.window_open`): pages then write "closed on", not "closes on"."""
    return closes_at is not None and not window_open(closes_at, now or utcnow())


def window_text(offering: Any, now: datetime | None = None) -> str:
    """An offering's assessment window in a few words (the instructor's home page)."""
    if offering.finalized_at:
        return _("finalized on %(date)s", date=when(offering.finalized_at))
    if offering.window_closes_at is None:
        return _("open, no closing date")
    if closing_passed(offering.window_closes_at, now):
        return _("closed on %(date)s", date=when(offering.window_closes_at))
    return _("closes on %(date)s", date=when(offering.window_closes_at))


def assessment_closing_text(offering: Any, now: datetime | None = None) -> str:
    """When a learner's assessment closes or closed; empty without a closing date."""
    if offering.window_closes_at is None:
        return ""
    if closing_passed(offering.window_closes_at, now):
        return _("assessment closed on %(date)s", date=when(offering.window_closes_at))
    return _("assessment closes on %(date)s", date=when(offering.window_closes_at))


@lru_cache(maxsize=8)
def _decimal_symbol(locale: str) -> str:
    return get_decimal_symbol(locale)


@lru_cache(maxsize=8)
def _percent_first(locale: str) -> bool:
    """Whether the language writes the sign first ('%72' in Turkish, '72%' in English)."""
    return Locale.parse(locale).percent_formats[None].pattern.startswith("%")


def number(value: object) -> str:
    """A percent in the page's language with at most one decimal ('72,5' in Turkish).

    Rounded down, so 69.96 shows as 69.9 and never looks like a threshold of 70 was met.
    Babel's general formatter is too slow for a 10,000-cell grid; percents need no grouping.
    """
    if value is None:
        return "—"
    text = format(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_FLOOR), "f")
    text = text.removesuffix(".0")
    if "." not in text:
        return text
    symbol = g.get("decimal_symbol")
    if symbol is None:
        symbol = g.decimal_symbol = _decimal_symbol(str(get_locale() or "en"))
    return text.replace(".", symbol)


def percent(value: object) -> str:
    """`number` with the percent sign where the page's language puts it."""
    text = number(value)
    if value is None:
        return text
    first = g.get("percent_first")
    if first is None:
        first = g.percent_first = _percent_first(str(get_locale() or "en"))
    return "%" + text if first else text + "%"


def install(app: App) -> None:
    """Register the helpers and the locale hook once per app."""
    if app.extensions.get("lti_tool_pages_helpers"):
        return
    app.extensions["lti_tool_pages_helpers"] = True
    app.jinja_env.globals.update(
        # Macros imported without `with context` see only globals: give them the session's
        # CSRF token and `sid` too, so a form built by any area's macro keeps both.
        csrf_token=auth.csrf_token,
        csrf_field=auth.CSRF_FIELD,
        sid=LocalProxy(lambda: g.get("sid")),
        page_code=auth.page_code,
        code_param=auth.CODE_PARAM,
        optional_url=optional_url,
        locale_switch_url=locale_switch_url,
        supported_locales=SUPPORTED_LOCALES,
        locale_names=LOCALE_NAMES,
        role_label=role_label,
        status_label=status_label,
        pop_notice=pop_notice,
        level_name=level_name,
        lms_kind_label=lms_kind_label,
        audit_label=audit_label,
        language_name=language_name,
        window_text=window_text,
        assessment_closing_text=assessment_closing_text,
    )
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.filters["int_format"] = int_format
    app.before_request(remember_locale_choice)


def install_on_setup(state: BlueprintSetupState) -> None:
    install(state.app)
