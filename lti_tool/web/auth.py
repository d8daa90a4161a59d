"""Who is asking: sessions bound to an LTI launch, roles, and CSRF.

A launch creates a `WebSession` row and hands the browser an opaque token. The token travels as
a cookie (`SameSite=None; Secure` on HTTPS, so it works inside the LMS iframe) and, for browsers
that block third-party cookies, as the `sid` parameter that `session_url` adds to every link and
form. Only the token's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.errors import Forbidden, Unauthorized
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import WebSession
from lti_tool.store.sessions import (  # noqa: F401 (re-exported for the web layer)
    ROLES,
    SESSION_LIFETIME,
    Actor,
    start_session,
    token_hash,
)

COOKIE_NAME = "lti_tool_session"
SID_PARAM = "sid"
SESSION_HEADER = "X-LTI-Tool-Session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def _request_token() -> tuple[str | None, bool]:
    """The session token and whether it came in the URL/form rather than a cookie."""
    token = request.headers.get(SESSION_HEADER) or request.values.get(SID_PARAM)
    if token:
        return token, True
    return request.cookies.get(COOKIE_NAME), False


def load_actor(db: Session) -> Actor | None:
    token, in_url = _request_token()
    g.sid = token if in_url else None
    if not token or len(token) > 200:
        return None
    row = db.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token)))
    if row is None or row.expires_at <= utcnow():
        return None
    return Actor(
        session_id=row.id,
        platform_id=row.platform_id,
        person_id=row.person_id,
        context_id=row.context_id,
        resource_link_id=row.resource_link_id,
        role=row.role,
        locale=row.locale,
        message_type=row.message_type,
        csrf_secret=row.csrf_secret,
        launch_data=dict(row.launch_data or {}),
    )


def current_actor() -> Actor | None:
    return g.get("actor")


def require_actor() -> Actor:
    actor = current_actor()
    if actor is None:
        raise Unauthorized("No LTI session: open the tool from your course in the LMS.")
    return actor


def require_role(*roles: str) -> Callable:
    """Route decorator: 401 without a session, 403 when the launch role is not among `roles`."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            actor = require_actor()
            if actor.role not in roles:
                raise Forbidden("Your role in this course does not allow this page.")
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped

    return decorator


def session_url(endpoint: str, **values: Any) -> str:
    """`url_for` that keeps a cookie-less session alive by carrying `sid`."""
    if g.get("sid"):
        values.setdefault(SID_PARAM, g.sid)
    return url_for(endpoint, **values)


def csrf_token() -> str:
    actor = current_actor()
    if actor is None:
        return ""
    return hmac.new(actor.csrf_secret.encode(), b"csrf", hashlib.sha256).hexdigest()


def check_csrf() -> None:
    """Refuse a state-changing request whose CSRF token does not match the session's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    actor = current_actor()
    if actor is None:
        return  # the route's own require_role answers 401
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    if not hmac.compare_digest(sent, csrf_token()):
        raise Forbidden("The form has expired or did not come from this tool; reload the page.")


def cookie_kwargs() -> dict:
    """Cookie flags that survive the LMS iframe on HTTPS and still work on loopback HTTP."""
    secure = current_app.config["LTI_SETTINGS"].is_https
    return {
        "httponly": True,
        "secure": secure,
        "samesite": "None" if secure else "Lax",
        "max_age": int(SESSION_LIFETIME.total_seconds()),
        "path": "/",
    }
