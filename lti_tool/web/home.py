"""The tool's front door: what it is, where people launch it from, and public verification.

Nobody needs a session here: the demo prints the root URL, and a person who types it should
learn that the tool is opened from a Moodle or Canvas course, and where to check a credential.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, send_file

bp = Blueprint("home", __name__)

FAVICON = Path(__file__).parent / "static" / "favicon.svg"


@bp.get("/")
def index() -> str:
    settings = current_app.config["LTI_SETTINGS"]
    return render_template("home/index.html", base_url=settings.base_url.rstrip("/"))


@bp.get("/favicon.ico")
@bp.get("/favicon.svg")
def favicon() -> Response:
    """One SVG icon for every browser that asks (`/favicon.ico` is where they look first)."""
    return send_file(FAVICON, mimetype="image/svg+xml", max_age=86400)
