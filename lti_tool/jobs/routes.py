"""The Office's view of background jobs (`/admin/jobs`): what waits, runs and failed (with
the reason), and a retry button for failed jobs. Scoped to the Office's own institution: the
jobs of its registrations; another institution's job is a 404, as if it did not exist."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lti_tool.errors import NotFound
from lti_tool.jobs import office, runner
from lti_tool.store.models.jobs import STATUSES
from lti_tool.web.auth import require_actor, require_role, session_url
from lti_tool.web.db import get_db
from lti_tool.web.jinja import install_on_setup

bp = Blueprint("office_jobs", __name__, url_prefix="/admin/jobs", template_folder="templates")
bp.record_once(install_on_setup)

# What a job's status and kind mean, in words (the codes stay in the data attributes).
STATUS_LABELS = {"waiting": _l("waiting"), "running": _l("running"), "failed": _l("failed"),
                 "done": _l("done")}
KIND_LABELS = {
    "grades.passback": _l("sending scores to the gradebook"),
    "grades.sync": _l("reading the gradebook"),
    "grades.scheduled_sync": _l("scheduled gradebook reading"),
    "grades.close_windows": _l("closing re-evaluation windows"),
    "catalogue.lapse_overdue": _l("marking overdue revalidations"),
    "jobs.purge": _l("clearing old finished jobs"),
    "evidence.daily": _l("daily evidence checkpoint"),
    "launch.prune": _l("clearing expired sign-in data"),
    "reports.follow_ups": _l("sending follow-up questions"),
}


def _platforms() -> dict[int, str]:
    """The Office's institution's registrations: the jobs it may see and retry."""
    return office.institution_platforms(get_db(), require_actor().institution_id)


@bp.get("/")
@require_role("admin")
def index() -> str:
    status = request.args.get("status", "")
    status = status if status in STATUSES else ""
    db = get_db()
    platforms = _platforms()
    scope = set(platforms)
    return render_template("jobs/index.html", backlog=office.backlog(db, scope),
                           jobs=office.listing(db, scope, status=status or None),
                           platforms=platforms, status=status, statuses=STATUSES,
                           status_labels=STATUS_LABELS, kind_labels=KIND_LABELS)


@bp.post("/<int:job_id>/retry")
@require_role("admin")
def retry(job_id: int):
    db = get_db()
    if not runner.retry(db, job_id, platform_ids=set(_platforms())):
        raise NotFound(_("No failed job with that number."))
    db.commit()
    return redirect(session_url("office_jobs.index"), 303)
