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
    return render_template("platforms/detail.html", platform=platform,
                           counts=platform_data_counts(db, platform),
                           deployments=sorted(platform.deployments, key=lambda d: d.id))


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
