"""Pages for the instructor role: the course overview (learners x learning outcomes)."""

from __future__ import annotations

from flask import Blueprint, render_template

from lti_tool.web import view_models
from lti_tool.web.auth import require_actor, require_role
from lti_tool.web.db import get_db
from lti_tool.web.jinja import install_on_setup

bp = Blueprint("instructor", __name__, url_prefix="/instructor")
bp.record_once(install_on_setup)


@bp.get("/")
@require_role("instructor")
def home() -> str:
    actor = require_actor()
    db = get_db()
    course = view_models.course_of(db, actor)
    learner_count = view_models.learner_count(db, actor)
    return render_template("instructor/home.html", course=course, learner_count=learner_count)
