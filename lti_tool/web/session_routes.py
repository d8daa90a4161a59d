"""Ending a session: POST /session/logout (the footer's "Sign out" button)."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from lti_tool.web import auth
from lti_tool.web.db import get_db

bp = Blueprint("session", __name__, url_prefix="/session")


@bp.post("/logout")
@auth.require_role(*auth.ROLES)
def logout():
    """Revoke this session (cookie, page token and codes alike) and forget the cookie."""
    actor = auth.require_actor()
    db = get_db()
    auth.revoke(db, actor.session_id)
    db.commit()
    g.actor = None  # the page below is signed out: no session links, no role navigation
    g.sid = None
    g.cookieless = False
    g.frame_platform_id = actor.platform_id
    response = auth.no_store(render_template("session/signed_out.html"))
    auth.delete_session_cookies(response)
    return response
