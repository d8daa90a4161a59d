"""Who is asking: sessions bound to an LTI launch, roles, and CSRF.

A launch creates a `WebSession` row. The browser holds the session in one of two ways:

- a cookie (`lti_tool_session`, HttpOnly, `SameSite=None; Secure` wherever the browser takes a
  Secure cookie: HTTPS and loopback), when the browser keeps it;
- cookie-less, when the LMS iframe is third-party and the browser blocks its cookies: the
  redirect after the launch carries a one-time **launch code** (`lc`, 60 s), exchanged on the
  first request; the page then holds a **page token** that POST forms send in a hidden `sid`
  field (a request body, never logged) and scripts in the `X-LTI-Tool-Session` header, and
  every link carries its own one-time **page code** (`lc`) that is useless once followed.

No session secret ever sits in a URL that can be used again: a code in a log or a `Referer`
has been spent. A cookie session always wins over a code, a header or a form field, so a link
or a form carrying someone else's session never replaces the one the browser has (session
fixation). Sessions are bound to the launching browser (its User-Agent and network,
`client_binding`): a token taken to another client is refused. They expire after
`SESSION_IDLE` without a request (sliding), at most `SESSION_MAX` after the launch, and can be
revoked (`revoke`, the logout route). Only the token's SHA-256 is stored; codes and page tokens
are HMACs under the application's secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache, wraps
from typing import Any

from flask import current_app, g, request, url_for
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain.actors import SessionActor
from lti_tool.errors import Forbidden, Unauthorized
from lti_tool.store.db import changed_rows, utcnow
from lti_tool.store.models.core import Platform, UsedSessionCode, WebSession
from lti_tool.store.sessions import (  # noqa: F401 (re-exported for the web layer)
    ROLES,
    SESSION_IDLE,
    SESSION_LIFETIME,
    SESSION_MAX,
    Actor,
    start_session,
    token_hash,
)

COOKIE_NAME = "lti_tool_session"
# On a plain-HTTP loopback base URL only: a SameSite=Lax, non-Secure twin for the browsers (and
# HTTP clients) that refuse `Secure` cookies over http://localhost (Safari, python requests).
LAX_COOKIE_NAME = "lti_tool_session_lax"
SID_PARAM = "sid"  # the page token's form field (POST bodies only, never a URL parameter)
CODE_PARAM = "lc"  # a one-time session code in a URL
SESSION_HEADER = "X-LTI-Tool-Session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
RENEW_EVERY = timedelta(minutes=1)
LAUNCH_CODE_LIFETIME = timedelta(seconds=60)
PAGE_CODE_LIFETIME = SESSION_IDLE
CODE_KINDS = ("launch", "page")
TOKEN_MAX = 200


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _secret() -> bytes:
    return str(current_app.config["SECRET_KEY"]).encode()


def _mac(message: str) -> str:
    return _b64(hmac.new(_secret(), message.encode(), hashlib.sha256).digest())


# --- binding to the launching browser ---------------------------------------------------------

@lru_cache(maxsize=4096)  # pure; every launch asks it for its client (parsing is the cost)
def client_network(address: str | None, mode: str) -> str:
    """The part of the client address a session is bound to: its /24 (IPv4) or /64 (IPv6)
    network in mode `network`, nothing in mode `agent` or `off`."""
    if mode != "network" or not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def client_binding() -> str | None:
    """SHA-256 of this request's User-Agent and network (setting `session_binding`), or None
    when binding is off."""
    mode = current_app.config["LTI_SETTINGS"].session_binding
    if mode == "off":
        return None
    agent = request.headers.get("User-Agent", "")[:500]
    return token_hash(f"{agent}|{client_network(request.remote_addr, mode)}")


# --- sessions -----------------------------------------------------------------------------------

def session_id_for(db: Session, token: str) -> int | None:
    return db.scalar(select(WebSession.id).where(WebSession.token_hash == token_hash(token)))


def revoke(db: Session, session_id: int) -> None:
    """End a session now (logout); its cookie, page token and codes stop working."""
    db.execute(update(WebSession).where(WebSession.id == session_id,
                                        WebSession.revoked_at.is_(None))
               .values(revoked_at=utcnow()))


def revoke_person(db: Session, person_id: int) -> int:
    """End every live session of a person (all their launches); returns how many."""
    return changed_rows(db, update(WebSession).where(WebSession.person_id == person_id,
                                                     WebSession.revoked_at.is_(None))
                        .values(revoked_at=utcnow()))


def prune_sessions(db: Session) -> None:
    """Forget sessions and spent codes that can no longer matter."""
    now = utcnow()
    db.execute(delete(UsedSessionCode).where(UsedSessionCode.expires_at < now))
    db.execute(delete(WebSession).where(WebSession.expires_at < now - SESSION_MAX))


def page_token(row: WebSession) -> str:
    """The session as a page holds it when the browser keeps no cookie."""
    return f"{row.id}.{_mac(f'page.{row.id}.{row.token_hash}')}"


def _by_page_token(db: Session, token: str) -> WebSession | None:
    number, _, mac = token.partition(".")
    if not number.isdigit() or len(number) > 12 or not mac:
        return None
    row = db.get(WebSession, int(number))
    if row is None or not hmac.compare_digest(page_token(row), token):
        return None
    return row


def _by_token(db: Session, token: str) -> WebSession | None:
    if not token or len(token) > TOKEN_MAX:
        return None
    if "." in token:
        return _by_page_token(db, token)
    return db.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token)))


def _expiry_limit(row: WebSession) -> datetime:
    return row.absolute_expires_at or (row.created_at + SESSION_MAX)


def session_problem(row: WebSession, binding: str | None) -> str | None:
    """Why this session cannot serve this request, or None."""
    now = utcnow()
    if row.revoked_at is not None:
        return "Your session has ended (you signed out): open the tool again from the course."
    if row.expires_at <= now or _expiry_limit(row) <= now:
        return "Your session has expired: open the tool again from the course."
    if row.binding is not None and binding is not None and not hmac.compare_digest(
            row.binding, binding):
        return ("This session was started in another browser: open the tool from your course "
                "in this one.")
    return None


def _renew(db: Session, row: WebSession) -> None:
    """Sliding expiry: push the idle deadline forward, at most once a minute."""
    now = utcnow()
    target = min(now + SESSION_IDLE, _expiry_limit(row))
    if target - row.expires_at >= RENEW_EVERY:
        db.execute(update(WebSession).where(WebSession.id == row.id).values(expires_at=target))
        row.expires_at = target
        g.session_write = True


# --- one-time codes -------------------------------------------------------------------------

def mint_code(session_id: int, kind: str) -> str:
    """A signed one-time code for `session_id`: `launch` (60 s) or `page` (a link's)."""
    assert kind in CODE_KINDS
    lifetime = LAUNCH_CODE_LIFETIME if kind == "launch" else PAGE_CODE_LIFETIME
    expires = int(time.time() + lifetime.total_seconds())
    body = f"{kind[0]}.{session_id}.{expires}.{_b64(secrets.token_bytes(12))}"
    return f"{body}.{_mac('code.' + body)}"


def _exchange(db: Session, code: str) -> WebSession | None:
    """Spend a code: a good signature, unexpired, of a kind allowed here, first use."""
    parts = code.split(".")
    if len(code) > TOKEN_MAX or len(parts) != 5:
        g.session_refusal = "The link's session code is not valid: open the tool again."
        return None
    kind, number, expires, nonce, mac = parts
    if not hmac.compare_digest(_mac("code." + ".".join(parts[:4])), mac) or kind not in "lp" \
            or not number.isdigit() or not expires.isdigit():
        g.session_refusal = "The link's session code is not valid: open the tool again."
        return None
    if int(expires) < time.time():
        g.session_refusal = "The link has expired: open the tool again from the course."
        return None
    # Nothing else is pending in the request's transaction yet: a refusal rolls back only this.
    db.add(UsedSessionCode(code_id=nonce, expires_at=datetime.fromtimestamp(
        int(expires) + 1, tz=utcnow().tzinfo)))
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        g.session_refusal = ("This link was already used. Links of a page opened without "
                             "cookies work once: open the tool again from the course.")
        return None
    g.session_write = True
    fetch_site = request.headers.get("Sec-Fetch-Site", "same-origin")
    if kind == "p" and fetch_site not in ("same-origin", "none"):
        # A page code is only ever followed from the tool's own pages (spent all the same).
        g.session_refusal = "A session link from another site is not accepted."
        return None
    return db.get(WebSession, int(number))


def _form_token() -> str | None:
    """The page token of a same-origin form POST (never from the query string)."""
    if request.method in ("GET", "HEAD") or SID_PARAM not in request.form:
        return None
    if request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
        return None  # a form on another site cannot bring its session along
    return request.form.get(SID_PARAM)


def load_actor(db: Session) -> SessionActor | None:
    """The request's session: cookie first; else page token (header, POST field); else code.

    A code in the URL is spent whenever it arrives, even when the cookie or a page token is
    what identifies the request, so no URL that reached the tool still opens a session."""
    g.sid = None
    g.cookieless = False
    binding = client_binding()
    code = request.args.get(CODE_PARAM)
    from_code = _exchange(db, code) if code else None
    row = None
    cookie = request.cookies.get(COOKIE_NAME) or request.cookies.get(LAX_COOKIE_NAME)
    if cookie:
        row = _by_token(db, cookie)
        if row is not None and session_problem(row, binding) is not None:
            row = None
    via_cookie = row is not None
    if row is None:
        token = request.headers.get(SESSION_HEADER) or _form_token()
        row = _by_token(db, token) if token else from_code
    if row is None:
        _commit_if_written(db)
        return None
    problem = session_problem(row, binding)
    if problem is not None:
        g.session_refusal = problem
        _commit_if_written(db)
        return None
    platform = db.get(Platform, row.platform_id)
    if platform is None or platform.status != "active":
        _commit_if_written(db)
        return None  # a pending or disabled registration's sessions carry no rights
    _renew(db, row)
    _commit_if_written(db)
    if not via_cookie:
        g.cookieless = True
        g.sid = page_token(row)
    return SessionActor(
        institution_id=platform.institution_id,
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


def same_for_everyone() -> None:
    """A public page (a credential, a feedback or follow-up link) looks the same in a signed-in
    browser: no role navigation, no session links, the visitor's language (`?lang=`, else the
    browser's), not the LMS session's."""
    g.actor = None
    g.sid = None


def _commit_if_written(db: Session) -> None:
    if g.pop("session_write", False):
        db.commit()


def current_actor() -> SessionActor | None:
    return g.get("actor")


def require_actor() -> SessionActor:
    actor = current_actor()
    if actor is None:
        raise Unauthorized(g.get("session_refusal")
                           or "No LTI session: open the tool from your course in the LMS.")
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
    """`url_for` for the tool's pages: a cookie-less page's link carries its own one-time code.

    The code is minted per link (an HMAC, no database write), so a download or a second tab
    never spends another link's code; following a link spends its code."""
    actor = current_actor()
    if g.get("cookieless") and actor is not None:
        values[CODE_PARAM] = mint_code(actor.session_id, "page")
    return url_for(endpoint, **values)


def page_code() -> str:
    """A fresh one-time code for a cookie-less page's GET form (hidden `lc` field)."""
    actor = current_actor()
    if not g.get("cookieless") or actor is None:
        return ""
    return mint_code(actor.session_id, "page")


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


def no_store(body: str) -> Any:
    """A page response that no cache keeps."""
    response = current_app.make_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def secure_cookies(settings: Any) -> bool:
    """Whether the tool's cookies can be `Secure` (hence `SameSite=None`): on HTTPS, and on a
    loopback base URL, which browsers treat as a secure context."""
    return _secure_base(settings.base_url)


@lru_cache(maxsize=16)  # asked for every cookie a response sets; the base URL rarely changes
def _secure_base(base_url: str) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(base_url)
    return parsed.scheme == "https" or (parsed.hostname or "") in ("localhost", "127.0.0.1", "::1")


def set_session_cookies(response: Any, token: str) -> None:
    """The session cookie, and on plain-HTTP loopback its Lax twin."""
    response.set_cookie(COOKIE_NAME, token, **cookie_kwargs())
    if not current_app.config["LTI_SETTINGS"].is_https:
        lax = cookie_kwargs()
        lax.update(secure=False, samesite="Lax")
        response.set_cookie(LAX_COOKIE_NAME, token, **lax)


def delete_session_cookies(response: Any) -> None:
    for name in (COOKIE_NAME, LAX_COOKIE_NAME):
        response.delete_cookie(name, path="/")


def cookie_kwargs() -> dict:
    """Cookie flags that survive a cross-site POST and the LMS iframe wherever browsers allow."""
    secure = secure_cookies(current_app.config["LTI_SETTINGS"])
    return {
        "httponly": True,
        "secure": secure,
        "samesite": "None" if secure else "Lax",
        "max_age": int(SESSION_LIFETIME.total_seconds()),
        "path": "/",
    }
