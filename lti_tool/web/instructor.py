"""Pages for the instructor role: the course overview (learners x learning outcomes) and CSV.

Sorting and filtering happen on the server with plain links and a GET form, so they work with
a keyboard, without scripts, and inside any LMS iframe. Actions (mapping, scoring, granting a
re-evaluation, finalizing, syncing) belong to other areas: the page links or posts to them.
"""

from __future__ import annotations

import csv
import io

from babel.numbers import get_decimal_symbol
from flask import Blueprint, Response, render_template, request
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lti_tool.web import view_models
from lti_tool.web.auth import Actor, require_actor, require_role
from lti_tool.web.db import get_db
from lti_tool.web.jinja import install_on_setup, optional_url, status_label, status_labels

bp = Blueprint("instructor", __name__, url_prefix="/instructor")
bp.record_once(install_on_setup)

# Other areas' endpoints the overview offers, shown only once they exist.
ACTION_ENDPOINTS = {
    "mapping": "grades.mapping",
    "score": "grades.score_rubrics",
    "finalize": "grades.finalize",
    "grant": "grades.grant_reevaluation",
    "sync": "sync.sync_now",
    "sync_status": "sync.status",
    "sync_status_json": "sync.status_json",
    "settings": "catalogue.instructor_offering",
    "offerings": "catalogue.instructor_offerings",
}

FILTER_LABELS = {
    "all": _l("all learners"),
    "passed": _l("passed"),
    "failed": _l("failed"),
    "eligible": _l("eligible for re-evaluation"),
    "not_assessed": _l("not yet assessed"),
    "in_progress": _l("in progress"),
    "reevaluation": _l("re-evaluation open"),
}

SYNC_LABELS = {
    "running": _l("running"),
    "succeeded": _l("succeeded"),
    "failed": _l("failed"),
}


def _overview(actor: Actor) -> tuple[view_models.Overview, dict]:
    """The overview for the request's query arguments, and those arguments cleaned."""
    offering_id = request.args.get("offering", type=int)
    show = request.args.get("show", "all")
    show = show if show in view_models.FILTERS else "all"
    sort = request.args.get("sort", "name")[:50]
    direction = "desc" if request.args.get("dir") == "desc" else "asc"
    overview = view_models.course_overview(
        get_db(), actor, offering_id=offering_id, show=show, sort=sort,
        descending=direction == "desc")
    return overview, {"offering": offering_id, "show": show, "sort": sort, "dir": direction}


@bp.get("/")
@require_role("instructor")
def home() -> str:
    """Where the course stands: the grid, the counts, sync health and the actions."""
    actor = require_actor()
    overview, args = _overview(actor)
    offering = overview.offering
    return render_template(
        "instructor/home.html", course=view_models.course_of(get_db(), actor),
        overview=overview, args=args, filters=view_models.FILTERS, actions=ACTION_ENDPOINTS,
        filter_labels={k: str(v) for k, v in FILTER_LABELS.items()},
        outcome_columns=[(o.code, o.code) for o in offering.mc_version.outcomes]
        if offering else [],
        grant_url_base=optional_url(ACTION_ENDPOINTS["grant"], offering_id=offering.id)
        if offering else None,
        # words for the cells, translated once rather than ten thousand times
        not_assessed_text=_("not yet assessed"), not_graded_text=_("not graded"),
        attained_text=_("(attained)"),
        below_text=_("(below the threshold)"), statuses=status_labels(),
        eligible_text=_("eligible"),
        sync=view_models.sync_health(get_db(), actor),
        sync_labels={k: str(v) for k, v in SYNC_LABELS.items()})


@bp.get("/overview.csv")
@require_role("instructor")
def overview_csv() -> Response:
    """The grid as CSV (same filter and order as on screen), one row per learner."""
    overview, _args = _overview(require_actor())
    codes = [o.code for o in overview.offering.mc_version.outcomes] if overview.offering else []
    # Excel opens UTF-8 only with a BOM (else ş and ı are garbled); where the decimal mark is a
    # comma (Turkish), it expects ";" between fields.
    comma_decimals = get_decimal_symbol(get_locale()) == ","
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, delimiter=";" if comma_decimals else ",")
    writer.writerow([_("Name"), _("Email"), _("Status"),
                     *[_("%(code)s level", code=c) for c in codes], *[f"{c} %" for c in codes]])
    for row in overview.rows:
        writer.writerow([
            _csv_safe(row.person.name), _csv_safe(row.person.email or ""),
            status_label(row.status),
            *[_csv_safe(c.level["label"]) if c.level else "" for c in row.cells],
            *["" if c.percent is None else format_decimal(c.percent, format="0.##")
              for c in row.cells],
        ])
    name = f"overview-{overview.offering.mc_version.micro_credential.code}.csv" \
        if overview.offering else "overview.csv"
    return Response(buffer.getvalue(), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _csv_safe(value: str) -> str:
    """Keep spreadsheet programs from running names that start like a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
