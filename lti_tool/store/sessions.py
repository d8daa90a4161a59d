"""Web sessions bound to a launch: the one place they are made (no request needed).

`start_session` is called by the launch (in its transaction) and by tests; the web layer
(`lti_tool.web.auth`) finds the session again from the token the browser sends and builds the
`Actor`. Only the token's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from lti_tool.domain.actors import Actor
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import WebSession

__all__ = ["ROLES", "SESSION_IDLE", "SESSION_LIFETIME", "SESSION_MAX", "Actor", "NewSession",
           "open_session", "start_session", "token_hash"]

SESSION_IDLE = timedelta(minutes=30)  # sliding: each request pushes the deadline this far
SESSION_MAX = timedelta(hours=8)  # never longer after the launch
SESSION_LIFETIME = SESSION_MAX  # the cookie's max-age; the server decides expiry itself
ROLES = ("learner", "instructor", "admin")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class NewSession(NamedTuple):
    token: str  # the bearer token, shown once (only its hash is stored)
    id: int


# Built once: every launch runs it (a Core insert, not the ORM's unit of work).
_SESSIONS = cast(Table, WebSession.__table__)
_INSERT_SESSION = insert(_SESSIONS).returning(_SESSIONS.c.id)


def start_session(db: Session, **fields: Any) -> str:
    """Record a session for a validated launch and return its bearer token (`open_session`)."""
    return open_session(db, **fields).token


def open_session(
    db: Session,
    *,
    platform_id: int,
    person_id: int,
    context_id: int | None,
    resource_link_id: int | None,
    role: str,
    locale: str = "en",
    message_type: str = "LtiResourceLinkRequest",
    launch_data: dict | None = None,
    binding: str | None = None,
) -> NewSession:
    """Record a session for a validated launch: its bearer token (shown once) and id.

    `binding` is `web.auth.client_binding()` of the launching request; the launch always
    gives it (a session without one, as tests make, is usable from any client)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session_id = db.execute(_INSERT_SESSION, {
        "token_hash": token_hash(token),
        "platform_id": platform_id,
        "person_id": person_id,
        "context_id": context_id,
        "resource_link_id": resource_link_id,
        "role": role,
        "locale": locale,
        "message_type": message_type,
        "launch_data": launch_data or {},
        "csrf_secret": secrets.token_hex(32),
        "binding": binding,
        "created_at": now,
        "expires_at": now + SESSION_IDLE,
        "absolute_expires_at": now + SESSION_MAX,
    }).scalar_one()
    return NewSession(token=token, id=session_id)
