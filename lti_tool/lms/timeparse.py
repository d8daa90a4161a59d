"""Timestamps as LMSs send them: ISO 8601 strings (AGS, Canvas) or Unix seconds (Moodle)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime, or None for anything missing or unreadable (never raises)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        if isinstance(value, int | float):
            if value <= 0:
                return None
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            text = value.strip()
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


_PARSED: dict[str, datetime | None] = {}


def parse_timestamp_text(value: Any) -> datetime | None:
    """`parse_timestamp`, remembering the last few thousand texts it read (the results of a
    line item often carry the same few timestamps; one text always reads the same)."""
    if type(value) is not str:
        return parse_timestamp(value)
    parsed = _PARSED.get(value, _MISSING)
    if parsed is _MISSING:
        if len(_PARSED) > 4096:
            _PARSED.clear()
        parsed = _PARSED[value] = parse_timestamp(value)
    return parsed  # type: ignore[return-value]


_MISSING = object()
