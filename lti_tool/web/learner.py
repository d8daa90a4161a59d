"""Pages for the learner role: progress per micro-credential and badge claiming.

A learner only ever sees rows of their own person id in their own platform; the queries in
`view_models` take the actor and scope by it.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from lti_tool.web import view_models
from lti_tool.web.auth import require_actor, require_role
from lti_tool.web.db import get_db
from lti_tool.web.jinja import install_on_setup

bp = Blueprint("learner", __name__, url_prefix="/learner")
bp.record_once(install_on_setup)


@bp.get("/")
@require_role("learner")
def home() -> str:
    actor = require_actor()
    db = get_db()
    return render_template("learner/home.html", course=view_models.course_of(db, actor),
                           progress=view_models.learner_progress(db, actor))
