"""One-time notices ("Mapping version 3 saved") shown once on the next page.

The tool runs in cookie-less LMS iframes, so Flask's cookie `flash` cannot carry them, and a
`?notice=` parameter would come back on every reload. The notice is kept server-side on the
web session (`WebSession.launch_data["_notice"]`) by `flash_notice` after a POST and taken off
by the next page that renders it (`pop_notice`, called once by base.html).
"""

from __future__ import annotations

from flask import g

from lti_tool.store.models.core import WebSession
from lti_tool.web.auth import current_actor
from lti_tool.web.db import runtime

NOTICE_KEY = "_notice"
MAX_NOTICE = 300


def flash_notice(message: str) -> None:
    """Keep `message` for the session's next page (replacing an unread one)."""
    actor = current_actor()
    if actor is None or not message:
        return
    with runtime().sessions() as db:
        row = db.get(WebSession, actor.session_id)
        if row is None:
            return
        row.launch_data = {**(row.launch_data or {}), NOTICE_KEY: str(message)[:MAX_NOTICE]}
        db.commit()


def pop_notice() -> str:
    """The session's pending notice, removed so that a reload does not show it again."""
    if "notice_popped" in g:
        return g.notice_popped
    g.notice_popped = ""
    actor = current_actor()
    if actor is None or NOTICE_KEY not in actor.launch_data:
        return ""
    with runtime().sessions() as db:
        row = db.get(WebSession, actor.session_id)
        if row is None:
            return ""
        data = dict(row.launch_data or {})
        g.notice_popped = str(data.pop(NOTICE_KEY, ""))
        row.launch_data = data
        db.commit()
    return g.notice_popped
