"""One database session per request, closed (and rolled back if uncommitted) at teardown."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from lti_tool.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["lti_tool"]


def get_db() -> Session:
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.rollback()
        db.close()
