"""The SQL form of the assessment-window rule (`lti_tool.domain.decisions.window_open`).

`Offering.is_open(now)` and `Attempt.is_open(now)` are hybrid methods: on a loaded row they
call the domain rule, in a query they are the expression built here, so every caller (the
scheduled sync, the closing of due windows, an evaluation run) asks the same question the same
way. tests/grades/test_windows_rule.py checks the two forms agree on every combination.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute


def open_window(closes_at: InstrumentedAttribute[datetime | None], now: datetime,
                finalized_at: InstrumentedAttribute[datetime | None] | None = None,
                ) -> ColumnElement[bool]:
    """Open: not finalized (where the row can be), and no closing date or one still to come."""
    still_dated = or_(closes_at.is_(None), closes_at > now)
    return still_dated if finalized_at is None else and_(finalized_at.is_(None), still_dated)
