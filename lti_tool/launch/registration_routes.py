"""`/lti/register`: LTI Dynamic Registration, opened by the platform in an iframe or window."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from lti_tool.launch.registration import register_dynamically
from lti_tool.web.db import get_db

bp = Blueprint("registration", __name__, url_prefix="/lti", template_folder="templates")


@bp.get("/register")
def register():
    """Register the platform that opened this page, then tell it to close the dialog."""
    db = get_db()
    platform = register_dynamically(
        db,
        current_app.config["LTI_SETTINGS"],
        openid_configuration=request.args.get("openid_configuration"),
        registration_token=request.args.get("registration_token"),
        invite=request.args.get("invite"),
    )
    db.commit()
    return render_template("registration/done.html", platform=platform)
