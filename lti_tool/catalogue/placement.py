"""Deep linking: what an instructor can place in a course, and placing it (an Offering)."""

from __future__ import annotations

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from lti_tool.catalogue import service
from lti_tool.domain.actors import Actor, SessionActor
from lti_tool.errors import BadRequest, Forbidden
from lti_tool.launch.deep_linking import DeepLinkItem
from lti_tool.store.models.catalogue import MicroCredentialVersion

PLACING_ROLES = ("instructor", "admin")


def _item(version: MicroCredentialVersion, custom: dict[str, str] | None = None) -> DeepLinkItem:
    # In the instructor's language: the chooser shows it and the LMS keeps it as the link's text.
    kind = _("a course of its own") if version.kind == "course" else _("embedded in the course")
    text = _("%(code)s version %(v)s · %(kind)s · %(hours)s hours", code=version.code,
             v=version.version, kind=kind, hours=format_decimal(version.workload_hours))
    return DeepLinkItem(id=str(version.id), title=version.title, text=text,
                        custom=custom or {})


def _require_placer(actor: Actor) -> None:
    if actor.role not in PLACING_ROLES:
        raise Forbidden("Only instructors place micro-credentials in a course.")


def placeable_items(db: Session, actor: SessionActor) -> list[DeepLinkItem]:
    """The newest approved version of each micro-credential of the actor's platform."""
    _require_placer(actor)
    return [_item(version) for version in service.approved_versions(db, actor.platform_id)]


def place_item(db: Session, actor: SessionActor, item_id: str) -> DeepLinkItem:
    """Create (or reuse) the Offering in the actor's course; `custom` carries its id."""
    _require_placer(actor)
    if actor.context_id is None:
        raise BadRequest("Deep linking needs a course context to place a micro-credential in.")
    if not item_id.isdigit() or len(item_id) > 18:
        raise BadRequest(f"Not a micro-credential item: {item_id[:40]!r}")
    offering = service.place(db, actor.platform_id, actor.context_id, int(item_id), actor)
    return _item(offering.mc_version, {"offering_id": str(offering.id)})
