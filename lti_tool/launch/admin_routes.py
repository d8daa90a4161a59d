"""Office pages for platform registrations and deployments (`/admin/platforms`).

Scope: an Office manages the registration it launched from and the registrations it added on
this page, never the others. Dynamic Registration is open by default, so anyone can become the
Office of a registration of their own; they must not see or change another institution's. The
operator sees every registration with `lti-tool platform list`.
"""

from __future__ import annotations

import re

from flask import Blueprint, current_app, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from werkzeug.wrappers import Response

from lti_tool.errors import BadRequest, Conflict
from lti_tool.launch.platforms import (
    add_deployments,
    get_deployment,
    get_managed_platform,
    managed_platforms,
    platform_data_counts,
    register_platform,
    remove_platform,
    spec_from_mapping,
)
from lti_tool.launch.registration import create_invite
from lti_tool.lms.check import Finding, run_check
from lti_tool.store.models.core import LMS_KINDS, AuditEntry, Platform
from lti_tool.web.auth import require_actor, require_role, session_url
from lti_tool.web.db import get_db

bp = Blueprint("platforms", __name__, url_prefix="/admin/platforms",
               template_folder="templates")

FORM_FIELDS = ("name", "lms_kind", "issuer", "client_id", "auth_login_url", "auth_token_url",
               "key_set_url", "auth_audience")


# The registration rules (launch.platforms) speak English to the CLI and the JSON API; the
# form says the same in the page's language, without echoing codes or the typed value.
PROBLEM_WORDS: tuple[tuple[re.Pattern[str], object], ...] = tuple(
    (re.compile(pattern), words) for pattern, words in (
        (r"^is required$", _l("This field is required.")),
        (r"^is longer than (\d+) characters$", _l("This is too long.")),
        (r"^is not a well-formed URL", _l("This is not a well-formed address.")),
        (r"^must be an absolute http\(s\) URL", _l("Give a whole address that starts with "
                                                   "https://.")),
        (r"^must not contain spaces", _l("An address cannot contain spaces.")),
        (r"^must use HTTPS", _l("Use an https:// address (plain http:// works only for this "
                               "computer's own addresses).")),
        (r"^must not carry a #fragment$", _l("An address cannot end with a #fragment.")),
        (r"^must have no query or fragment$", _l("The issuer cannot have a ?query or a "
                                                  "#fragment.")),
        (r"^must be one of ", _l("Choose one of the options offered.")),
        (r"^each deployment id must be", _l("Each deployment ID must be 1-255 characters.")),
    ))


def problem_words(message: str) -> str:
    """A registration problem in the page's words (an unknown one as the rules said it)."""
    for pattern, words in PROBLEM_WORDS:
        if pattern.search(message):
            return str(words)
    return message


def _audit(platform: Platform | None, action: str, details: dict | None = None) -> None:
    actor = require_actor()
    get_db().add(AuditEntry(
        institution_id=actor.institution_id,
        platform_id=platform.id if platform is not None else None,
        actor_person_id=actor.person_id, actor_label="Office", action=action,
        target=f"{platform.issuer} {platform.client_id}" if platform is not None else "",
        details=details or {},
    ))


def _index_page(form: dict | None = None, problems: dict | None = None,
                invite_url: str | None = None, status: int = 200) -> tuple[str, int]:
    db = get_db()
    platforms = managed_platforms(db, require_actor().platform_id)
    return render_template(
        "platforms/index.html",
        platforms=platforms,
        counts={p.id: platform_data_counts(db, p) for p in platforms},
        form=form or {"lms_kind": "moodle"},
        problems=problems or {},
        lms_kinds=LMS_KINDS,
        invite_url=invite_url,
        policy=current_app.config["LTI_SETTINGS"].dynamic_registration,
        register_url=current_app.config["LTI_SETTINGS"].url("/lti/register"),
    ), status


@bp.get("/")
@require_role("admin")
def index() -> tuple[str, int]:
    """The Office's registrations with their deployments, and the form to add one."""
    return _index_page()


@bp.post("/")
@require_role("admin")
def add() -> Response | tuple[str, int]:
    """Add a registration; problems are shown next to their fields (400, nothing stored)."""
    form = {name: request.form.get(name, "").strip() for name in FORM_FIELDS}
    deployments = [d.strip() for d in request.form.get("deployments", "").split(",")
                   if d.strip()]
    values = {**form, "deployments": deployments,
              "auto_accept_deployments": request.form.get("auto_accept_deployments") == "on"}
    spec = spec_from_mapping(values, source="form")
    problems = {field: problem_words(message) for field, message in spec.problems().items()}
    if problems:
        return _index_page(form={**form, "deployments": ", ".join(deployments)},
                           problems=problems, status=400)
    db = get_db()
    try:
        office = get_managed_platform(db, require_actor().platform_id,
                                      require_actor().platform_id)
        platform = register_platform(
            db, spec, institution_id=office.institution_id, status="active",
            shared_issuers=current_app.config["LTI_SETTINGS"].shared_issuers)
        platform.managed_by_id = office.id
    except Conflict as exc:
        problem = {"issuer": _("This issuer belongs to another institution's registration; "
                               "only the operator can allow sharing it.")} \
            if "already belongs to institution" in exc.message else {"client_id": _(
                "Another registration already uses this client ID with this issuer or at "
                "this access token URL.")}
        return _index_page(form={**form, "deployments": ", ".join(deployments)},
                           problems=problem, status=409)
    _audit(platform, "platform.add", {"deployments": deployments})
    db.commit()
    return redirect(session_url("platforms.detail", platform_id=platform.id), 303)


@bp.post("/invite")
@require_role("admin")
def invite() -> tuple[str, int]:
    """A one-time Dynamic Registration URL, shown once."""
    db = get_db()
    created = create_invite(db, current_app.config["LTI_SETTINGS"],
                            note=request.form.get("note", "").strip())
    _audit(None, "platform.invite", {"note": created.row.note})
    db.commit()
    return _index_page(invite_url=created.url)


@bp.get("/<int:platform_id>")
@require_role("admin")
def detail(platform_id: int) -> str:
    db = get_db()
    platform = get_managed_platform(db, require_actor().platform_id, platform_id)
    return _detail_page(platform)


def _detail_page(platform: Platform, check: dict | None = None) -> str:
    db = get_db()
    return render_template("platforms/detail.html", platform=platform,
                           counts=platform_data_counts(db, platform),
                           deployments=sorted(platform.deployments, key=lambda d: d.id),
                           check=check)


@bp.post("/<int:platform_id>/check")
@require_role("admin")
def check(platform_id: int) -> str:
    """"Test connection": the check `lti-tool platform check` runs (`lti_tool.lms.check`),
    each finding in words. It only reads from the LMS; every LMS failure is a finding."""
    db = get_db()
    platform = get_managed_platform(db, require_actor().platform_id, platform_id)
    findings = run_check(db, current_app.config["LTI_SETTINGS"], platform)
    rows = [_finding_row(platform, finding) for finding in findings]
    failing = sum(1 for finding in findings if not finding.ok)
    _audit(platform, "platform.check", {"checks": len(findings), "failing": failing})
    db.commit()
    summary = (ngettext("%(num)s check needs attention.", "%(num)s checks need attention.",
                        failing) if failing else
               ngettext("The check passed.", "All %(num)s checks passed.", len(findings)))
    return _detail_page(platform, {"rows": rows, "failing": failing, "summary": summary})


def _scope_purpose(scope: str) -> str:
    return {
        "lineitem": _("create the micro-credential's grade column (grade passback)"),
        "lineitem.readonly": _("read the tool's gradebook columns"),
        "result.readonly": _("read the marks in those columns"),
        "score": _("send the micro-credential's grade (grade passback)"),
        "contextmembership.readonly": _("read the course roster (Names and Role "
                                        "Provisioning)"),
    }.get(scope, scope)


def _scope_fix(lms_kind: str) -> str:
    if lms_kind == "moodle":
        return _("In Moodle: Site administration > Plugins > Activity modules > External tool > "
                 "Manage tools > the tool's card > Edit; under Services set 'IMS LTI Assignment "
                 "and Grade Services' to 'Use this service for grade sync and column "
                 "management' and 'IMS LTI Names and Role Provisioning' to 'Use this service "
                 "to retrieve members' information'.")
    if lms_kind == "canvas":
        return _("In Canvas: Admin > Developer Keys > the tool's LTI key > Edit; enable the LTI "
                 "Advantage services (line items, results, scores, names and roles) and save.")
    return _("Enable the LTI Advantage services (AGS and NRPS) for the tool in the LMS.")


def _finding_row(platform: Platform, finding: Finding) -> dict[str, object]:
    """A finding in the reader's language: service, what was checked, what to do."""
    v = finding.values
    services = {"LTI Advantage": _("LTI Advantage"),
                "Moodle web services": _("Moodle web services"),
                "Canvas REST": _("Canvas REST")}
    what = {
        "scope": lambda: _("Permission %(scope)s: %(purpose)s", scope=v.get("scope", ""),
                           purpose=_scope_purpose(v.get("scope", ""))),
        "ws_token_missing": lambda: _("Web-service token"),
        "ws_token": lambda: _("Web-service token at %(url)s", url=v.get("url", "")),
        "ws_functions": lambda: _("Functions in the tool's external service"),
        "ws_function": lambda: _("%(function)s in course %(course)s",
                                 function=v.get("function", ""), course=v.get("course", "")),
        "no_course": lambda: _("Access in a course"),
        "canvas_token_missing": lambda: _("API token"),
        "canvas_assignments": lambda: _("Assignments of course %(course)s",
                                        course=v.get("course", "")),
    }
    fix = {
        "scope": lambda: _scope_fix(platform.lms_kind),
        "ws_token_missing": lambda: _(
            "Create a token for the tool's external service in Moodle (%(path)s); the operator "
            "stores it with lti-tool platform rest-token %(platform_id)s --file FILE. Without "
            "it the tool sees only its own AGS columns, not the course's other gradebook "
            "items.", path=v.get("path", ""), platform_id=v.get("platform_id", "")),
        "ws_functions": lambda: _("Add %(functions)s in Moodle: %(path)s.",
                                  functions=v.get("functions", ""), path=v.get("path", "")),
        "no_course": lambda: _("Launch the tool from a course once, then test the connection "
                               "again."),
        "canvas_token_missing": lambda: _(
            "Without a Canvas API token the tool reads only its own AGS columns; the operator "
            "stores one with lti-tool platform rest-token %(platform_id)s --file FILE.",
            platform_id=v.get("platform_id", "")),
    }
    return {
        "ok": finding.ok,
        "service": services.get(finding.service, finding.service),
        "what": what[finding.key]() if finding.key in what else finding.what,
        "fix": "" if finding.ok else (fix[finding.key]() if finding.key in fix else ""),
        "detail": "" if finding.ok else finding.detail or (
            "" if finding.key in fix else finding.fix),
    }


def _back(platform_id: int) -> Response:
    return redirect(session_url("platforms.detail", platform_id=platform_id), 303)


@bp.post("/<int:platform_id>/deployments")
@require_role("admin")
def add_deployment(platform_id: int) -> Response:
    db = get_db()
    platform = get_managed_platform(db, require_actor().platform_id, platform_id)
    deployment_id = request.form.get("deployment_id", "").strip()
    if not deployment_id or len(deployment_id) > 255:
        raise BadRequest(_("A deployment id must be 1-255 characters."))
    add_deployments(db, platform, [deployment_id])
    _audit(platform, "deployment.add", {"deployment_id": deployment_id})
    db.commit()
    return _back(platform_id)


@bp.post("/<int:platform_id>/deployments/<int:deployment_pk>")
@require_role("admin")
def set_deployment(platform_id: int, deployment_pk: int) -> Response:
    """Enable or disable one deployment (a disabled one cannot launch)."""
    db = get_db()
    platform = get_managed_platform(db, require_actor().platform_id, platform_id)
    deployment = get_deployment(db, platform, deployment_pk)
    enabled = _flag(request.form.get("enabled"))
    deployment.enabled = enabled
    _audit(platform, "deployment.enable" if enabled else "deployment.disable",
           {"deployment_id": deployment.deployment_id})
    db.commit()
    return _back(platform_id)


@bp.post("/<int:platform_id>/auto-accept")
@require_role("admin")
def set_auto_accept(platform_id: int) -> Response:
    db = get_db()
    platform = get_managed_platform(db, require_actor().platform_id, platform_id)
    platform.auto_accept_deployments = _flag(request.form.get("enabled"))
    _audit(platform, "platform.auto_accept", {"enabled": platform.auto_accept_deployments})
    db.commit()
    return _back(platform_id)


@bp.post("/<int:platform_id>/remove")
@require_role("admin")
def remove(platform_id: int) -> Response:
    """Remove a registration; with stored people or courses only when confirmed."""
    db = get_db()
    platform = get_managed_platform(db, require_actor().platform_id, platform_id)
    if platform.id == require_actor().platform_id:
        raise Conflict(_("You are signed in through this registration, so it cannot be "
                         "removed from here; use `lti-tool platform remove`."))
    label = {"issuer": platform.issuer, "client_id": platform.client_id}
    remove_platform(db, platform, force=request.form.get("confirm") == "on")
    db.add(AuditEntry(institution_id=require_actor().institution_id,
                      actor_person_id=require_actor().person_id, actor_label="Office",
                      action="platform.remove", target=f"{label['issuer']} "
                      f"{label['client_id']}", details=label))
    db.commit()
    return redirect(session_url("platforms.index"), 303)


def _flag(value: str | None) -> bool:
    if value not in ("0", "1"):
        raise BadRequest(_("The form sent an unexpected value; reload the page."))
    return value == "1"
