"""The languages the tool speaks, and how a launch's or a browser's locale maps to one."""

from __future__ import annotations

SUPPORTED_LOCALES = ("en", "tr")


def normalise_locale(value: str | None) -> str | None:
    """'tr-TR', 'tr_TR', 'TR' -> 'tr'; unsupported or empty -> None."""
    if not value:
        return None
    primary = value.replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in SUPPORTED_LOCALES else None
