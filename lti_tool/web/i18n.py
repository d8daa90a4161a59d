"""Locale choice: `?lang=` switch, else the LTI launch `locale`, else the browser, else default.

The switch is remembered on the launch's session row, so it survives navigation (also for
cookie-less sessions, whose links carry only `sid`).
"""

from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy import update

from lti_tool.domain.locales import SUPPORTED_LOCALES, normalise_locale
from lti_tool.store.models.core import WebSession
from lti_tool.web.db import get_db

__all__ = ["SUPPORTED_LOCALES", "normalise_locale", "remember_locale_choice", "select_locale"]


def select_locale() -> str:
    chosen = normalise_locale(request.args.get("lang"))
    if chosen:
        return chosen
    actor = g.get("actor")
    if actor is not None and normalise_locale(actor.locale):
        return normalise_locale(actor.locale)  # type: ignore[return-value]
    best = request.accept_languages.best_match(SUPPORTED_LOCALES)
    return best or current_app.config["LTI_SETTINGS"].default_locale


def remember_locale_choice() -> None:
    """Store a `?lang=` choice on the session so later pages keep that language.

    A language preference is the only thing this changes, so a plain GET link may set it.
    """
    chosen = normalise_locale(request.args.get("lang"))
    actor = g.get("actor")
    if chosen is None or actor is None or normalise_locale(actor.locale) == chosen:
        return

    db = get_db()
    db.execute(update(WebSession).where(WebSession.id == actor.session_id).values(locale=chosen))
    db.commit()
