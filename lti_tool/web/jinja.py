"""Template helpers shared by every page: links that keep `sid`, the language switch, dates.

They are installed on the app by the pages' blueprints (`install`, via `record_once`) so that
the application factory stays untouched; error pages rendered outside a blueprint get them too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, current_app, request
from flask.blueprints import BlueprintSetupState
from flask_babel import format_date, format_datetime, format_decimal, lazy_gettext
from werkzeug.routing import BuildError

from lti_tool.web import auth
from lti_tool.web.i18n import SUPPORTED_LOCALES, remember_locale_choice

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


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


def status_label(status: str) -> str:
    """Words for a status code, so colour is never the only signal."""
    return str(STATUS_LABELS.get(status, status.replace("_", " ")))


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
    """The current page in another language, keeping every query parameter (including `sid`)."""
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "lang"]
    args.append(("lang", code))
    return f"{request.path}?{urlencode(args)}"


def when(value: datetime | None, kind: str = "datetime") -> str:
    """A date or moment in the page's language; an em dash for 'never'."""
    if value is None:
        return "—"
    if kind == "date":
        return format_date(value, "medium")
    return format_datetime(value, "medium")


def number(value: object) -> str:
    """A percent or score in the page's language, at most one decimal ('72,5' in Turkish)."""
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0.#")


def install(app: Flask) -> None:
    """Register the helpers and the locale hook once per app."""
    if app.extensions.get("lti_tool_pages_helpers"):
        return
    app.extensions["lti_tool_pages_helpers"] = True
    app.jinja_env.globals.update(
        optional_url=optional_url,
        locale_switch_url=locale_switch_url,
        supported_locales=SUPPORTED_LOCALES,
        locale_names=LOCALE_NAMES,
        role_label=role_label,
        status_label=status_label,
    )
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["number"] = number
    app.before_request(remember_locale_choice)


def install_on_setup(state: BlueprintSetupState) -> None:
    install(state.app)
