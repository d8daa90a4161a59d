"""Locale choice: `?lang=` switch, else the LTI launch `locale`, else the browser, else default."""

from __future__ import annotations

from flask import current_app, g, request

SUPPORTED_LOCALES = ("en", "tr")


def normalise_locale(value: str | None) -> str | None:
    """'tr-TR', 'tr_TR', 'TR' -> 'tr'; unsupported or empty -> None."""
    if not value:
        return None
    primary = value.replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in SUPPORTED_LOCALES else None


def select_locale() -> str:
    chosen = normalise_locale(request.args.get("lang"))
    if chosen:
        return chosen
    actor = g.get("actor")
    if actor is not None and normalise_locale(actor.locale):
        return normalise_locale(actor.locale)  # type: ignore[return-value]
    best = request.accept_languages.best_match(SUPPORTED_LOCALES)
    return best or current_app.config["LTI_SETTINGS"].default_locale
