"""Office pages: issued credentials, search and revocation.

Only the Office (admin role) sees these, and only the credentials of its own platform
registration; revocation needs a reason, changes the status list every verifier reads, and is
written to the audit log.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from lti_tool.badges import europass, records, status
from lti_tool.store.models.core import Person
from lti_tool.web.auth import require_actor, require_role, session_url
from lti_tool.web.db import get_db, runtime

bp = Blueprint("office_credentials", __name__, url_prefix="/admin/credentials",
               template_folder="templates")


@bp.get("/")
@require_role("admin")
def credentials() -> str:
    actor = require_actor()
    search = request.args.get("q", "")[:200]
    wanted = request.args.get("status", "")
    rows = records.listing(get_db(), platform_id=actor.platform_id, search=search,
                           status=wanted if wanted in ("active", "revoked") else "")
    return render_template("badges/office_list.html", rows=rows, search=search, status=wanted,
                           offerings=records.offerings_with_credentials(get_db(),
                                                                        actor.platform_id))


@bp.get("/offerings/<int:offering_id>/europass.zip")
@require_role("admin")
def offering_europass(offering_id: int) -> Response:
    """Every valid credential of one offering as unsigned European Digital Credentials, one
    file each, zipped: what the Office uploads to the EDC Issuer to seal in one batch."""
    actor = require_actor()
    body, _count = europass.offering_zip(get_db(), runtime().settings, actor, offering_id)
    response = Response(body, mimetype="application/zip")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="europass-offering-{offering_id}.zip"')
    return response


@bp.get("/<public_id>")
@require_role("admin")
def detail(public_id: str) -> str:
    actor = require_actor()
    row = records.by_public_id(get_db(), public_id, actor.platform_id)
    return render_template("badges/office_detail.html", credential=row,
                           info=records.summary(row), error=None)


@bp.post("/<public_id>/revoke")
@require_role("admin")
def revoke(public_id: str) -> Response:
    actor = require_actor()
    db = get_db()
    row = records.by_public_id(db, public_id, actor.platform_id)
    person = db.get(Person, actor.person_id)
    status.revoke(db, runtime().settings, row, reason=request.form.get("reason", "")[:2000],
                  actor_person_id=actor.person_id,
                  actor_label=(person.name if person else "") or "Office")
    db.commit()
    return redirect(session_url("office_credentials.detail", public_id=public_id), code=303)
