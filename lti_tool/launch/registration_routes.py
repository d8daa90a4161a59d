"""`/lti/register`: LTI Dynamic Registration, opened by the platform in an iframe or window."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from lti_tool.errors import Forbidden
from lti_tool.launch.registration import register_dynamically
from lti_tool.web.db import get_db

DOCUMENT_DESTINATIONS = ("document", "iframe", "frame", "empty")


def refuse_subresource_requests() -> None:
    site = request.headers.get("Sec-Fetch-Site")
    if site in (None, "same-origin", "none"):
        return
    mode = request.headers.get("Sec-Fetch-Mode", "navigate")
    dest = request.headers.get("Sec-Fetch-Dest", "document")
    if mode != "navigate" or dest not in DOCUMENT_DESTINATIONS:
        raise Forbidden("Dynamic Registration starts when the LMS opens this page (in a window "
                        "or a frame), not from another site's image, script or fetch.")


bp = Blueprint("registration", __name__, url_prefix="/lti", template_folder="templates")


@bp.get("/register")
def register():
    """Register the platform that opened this page, then tell it to close the dialog.

    The spec's initiation is a GET the platform opens as a page (Canvas: an iframe; Moodle: a
    window), so a cross-site navigation must stay possible; what another site's page could fire
    without the administrator (an image, a script, fetch) is refused before the tool contacts
    anyone (Fetch Metadata headers, which every current browser sends)."""
    refuse_subresource_requests()
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
