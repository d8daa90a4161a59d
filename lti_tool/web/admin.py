"""Pages for the Micro-credentials Office (admin role): its home and the audit log.

The Office sees the rows of its own platform registration only; registrations, catalogue and
revocation have their own pages in other areas, which these pages link to.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from lti_tool.reports.actions import overdue_actions
from lti_tool.store.db import utcnow
from lti_tool.web import view_models
from lti_tool.web.auth import require_actor, require_role
from lti_tool.web.db import get_db
from lti_tool.web.jinja import install_on_setup

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.record_once(install_on_setup)

AUDIT_PAGE_SIZE = 50
CREDENTIALS_ENDPOINT = "office_credentials.credentials"
# Pages other areas own; each shows only once its endpoint exists.
OFFICE_LINKS = (
    ("platforms.index", _l("Platforms and registrations")),
    ("catalogue.office_list", _l("Catalogue")),
    ("catalogue.office_due", _l("Revalidation list")),
    (CREDENTIALS_ENDPOINT, _l("Issued credentials and revocation")),
    ("office_jobs.index", _l("Background jobs")),
    ("reports.report_page", _l("Annual quality report")),
)
MC_ENDPOINT = "catalogue.office_detail"


@bp.get("/")
@require_role("admin")
def home() -> str:
    """The Office's desk: what waits for it (approvals, revalidations) before what happened."""
    actor = require_actor()
    db = get_db()
    size = 10
    return render_template(
        "admin/home.html",
        platform=view_models.platform_with_deployments(db, actor),
        catalogue=view_models.catalogue_of(db, actor),
        issued=view_models.issued_summary(db, actor),
        entries=view_models.audit_page(db, actor, query="", page=1, size=size),
        size=size,
        now=utcnow(),
        overdue=overdue_actions(db, actor.institution_id),
        office_links=OFFICE_LINKS,
        mc_endpoint=MC_ENDPOINT,
        credentials_endpoint=CREDENTIALS_ENDPOINT,
    )


@bp.get("/audit")
@require_role("admin")
def audit() -> str:
    """Who did what on this platform, newest first, searchable (one page of 50 at a time)."""
    actor = require_actor()
    query = request.args.get("q", "").strip()[:200]
    page = max(1, request.args.get("page", 1, type=int) or 1)
    entries = view_models.audit_page(db=get_db(), actor=actor, query=query, page=page,
                                     size=AUDIT_PAGE_SIZE)
    return render_template("admin/audit.html", entries=entries, query=query, page=page,
                           size=AUDIT_PAGE_SIZE)
