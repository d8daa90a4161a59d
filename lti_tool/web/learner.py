"""Pages for the learner role: progress per micro-credential and badge claiming.

A learner only ever sees rows of their own person id in their own platform; the queries in
`view_models` take the actor and scope by it. Share links (verification page, downloads,
LinkedIn, wallets) are public URLs and never carry the session id.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lti_tool.domain.surveys import EMPLOYABILITY_OUTCOMES
from lti_tool.reports.surveys import learner_prompts
from lti_tool.store.db import utcnow
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import MicroCredentialVersion
from lti_tool.store.models.core import AuditEntry, Person, Platform
from lti_tool.web import share, view_models
from lti_tool.web.auth import require_actor, require_role, session_url
from lti_tool.web.db import get_db, runtime
from lti_tool.web.jinja import install_on_setup
from lti_tool.web.notices import flash_notice

bp = Blueprint("learner", __name__, url_prefix="/learner")
bp.record_once(install_on_setup)

# The badges area's public endpoints, by format.
DOWNLOADS = (
    ("public.credential_json", "JSON (Open Badges 3.0)", "json"),
    ("public.credential_jwt", "VC-JWT", "jwt"),
    ("public.credential_png", _l("PNG image (credential inside)"), "png"),
    ("public.credential_svg", _l("SVG image (credential inside)"), "svg"),
    # Unsigned, for the Office to seal in the Commission's EDC Issuer (README, Europass).
    ("public.credential_edc", _l("Europass EDC (ELM 3, unsigned, for sealing)"), "europass.json"),
)


@dataclass(frozen=True)
class Sharing:
    """Public links and the QR code of one credential."""

    page_url: str
    json_url: str
    downloads: list[tuple[str, str, str]]  # (label, url, file name)
    linkedin_url: str
    qr: str
    image_url: str | None


def _public(endpoint: str, **values: object) -> str:
    """An absolute public URL (base URL of the tool, no session id)."""
    return runtime().settings.url(url_for(endpoint, **values))


def _awarding_body(credential: Credential) -> str:
    """The name of the institution that issued the credential."""
    platform = get_db().get(Platform, credential.platform_id)
    return platform.institution.name if platform is not None else ""


def sharing_for(credential: Credential, title: str) -> Sharing:
    page_url = _public("public.credential_page", public_id=credential.public_id)
    return Sharing(
        page_url=page_url,
        json_url=_public("public.credential_json", public_id=credential.public_id),
        downloads=[(str(label), url_for(endpoint, public_id=credential.public_id),
                    f"{credential.public_id}.{ext}") for endpoint, label, ext in DOWNLOADS],
        linkedin_url=share.linkedin_url(
            name=title, organization=_awarding_body(credential),
            issued_at=credential.issued_at, cert_id=credential.public_id, cert_url=page_url),
        qr=share.qr_svg(page_url, _("QR code of the verification link")),
        image_url=url_for("public.achievement_png", version_id=credential.mc_version_id),
    )


@bp.get("/")
@require_role("learner")
def home() -> str:
    """The learner's own progress and badges in this course (and badges held elsewhere)."""
    actor = require_actor()
    db = get_db()
    progress = view_models.learner_progress(db, actor)
    others = view_models.other_credentials(db, actor, progress)
    sharing = {item.credential.public_id: sharing_for(item.credential, item.version.title)
               for item in progress if item.credential is not None}
    sharing.update({held.credential.public_id: sharing_for(held.credential, held.title)
                    for held in others})
    prompts = learner_prompts(db, institution_id=actor.institution_id,
                              platform_id=actor.platform_id, person_id=actor.person_id,
                              items=[(i.offering.id, i.status, i.accepted_at is not None)
                                     for i in progress],
                              issued=[i.credential.issued_at for i in progress if i.credential]
                              + [held.credential.issued_at for held in others])
    db.commit()  # follow-ups that fell due since the last launch
    return render_template("learner/home.html", course=view_models.course_of(db, actor),
                           progress=progress, others=others, sharing=sharing, now=utcnow(),
                           prompts=prompts, employability_outcomes=EMPLOYABILITY_OUTCOMES)


SHARE_TARGETS = {"linkedin": lambda s: s.linkedin_url, "page": lambda s: s.page_url}


@bp.get("/credentials/<public_id>/share/<any(linkedin,page):channel>")
@require_role("learner")
def share_credential(public_id: str, channel: str) -> Response:
    """Open a share target and record, once per channel, that the learner shared (the annual
    report counts shared credentials). Redirects to the public URL, which carries no session."""
    actor = require_actor()
    db = get_db()
    credential = view_models.own_credential(db, actor, public_id)
    channels = [details.get("channel") for (details,) in db.query(AuditEntry.details).filter(
        AuditEntry.platform_id == actor.platform_id, AuditEntry.actor_person_id == actor.person_id,
        AuditEntry.action == view_models.SHARE_ACTION, AuditEntry.target == public_id)]
    if channel not in channels:
        db.add(AuditEntry(institution_id=actor.institution_id, platform_id=actor.platform_id,
                          actor_person_id=actor.person_id, action=view_models.SHARE_ACTION,
                          target=credential.public_id,
                          details={"channel": channel}))
        db.commit()
    version_title = db.get(MicroCredentialVersion, credential.mc_version_id).title
    return redirect(SHARE_TARGETS[channel](sharing_for(credential, version_title)), code=302)


@bp.post("/credentials/<public_id>/accept")
@require_role("learner")
def accept_credential(public_id: str) -> Response:
    """The learner accepts their credential; recorded once in the audit log."""
    actor = require_actor()
    db = get_db()
    credential = view_models.own_credential(db, actor, public_id)
    if not view_models.accepted_credentials(db, actor, [credential.public_id]):
        person = db.get(Person, actor.person_id)
        db.add(AuditEntry(institution_id=actor.institution_id, platform_id=actor.platform_id,
                          actor_person_id=actor.person_id,
                          actor_label=person.name if person else "",
                          action=view_models.ACCEPT_ACTION, target=credential.public_id))
        db.commit()
    flash_notice(_("You accepted your credential."))
    return redirect(session_url("learner.home"), code=303)
