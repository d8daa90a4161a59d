"""Deep Linking 2.0: what an instructor can place in the course, and the signed response.

The response is signed by pylti1p3's `DeepLink` with the registration `DbToolConf` gives for
the launch's platform (the tool's `lti` key and its published kid).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from sqlalchemy.orm import Session

from lti_tool.domain.actors import Actor
from lti_tool.errors import BadRequest, Forbidden
from lti_tool.launch import claims as c
from lti_tool.launch.oidc import LAUNCH_PATH
from lti_tool.launch.toolconf import DbToolConf
from lti_tool.settings import Settings
from lti_tool.store.models.core import Platform


@dataclass(frozen=True)
class DeepLinkItem:
    """One placeable thing (an approved micro-credential), as the catalogue offers it.

    `custom` travels in the LtiResourceLink content item; the LMS sends it back on every launch
    of the placed link (catalogue puts `offering_id` there).
    """

    id: str
    title: str
    text: str = ""
    custom: dict[str, str] = field(default_factory=dict)


RESPONSE_LIFETIME = 600


def accepts_multiple(actor: Actor) -> bool:
    """Whether the LMS takes several items back (absent means yes; some send "false")."""
    settings = actor.launch_data.get("deep_linking_settings") or {}
    return settings.get("accept_multiple") not in (False, "false")


def checked_choice(actor: Actor, item_ids: list[str]) -> list[str]:
    """The chosen item ids, refused when the LMS takes one item only or one is chosen twice.

    Placing them (an Offering each) is the catalogue's (`lti_tool.catalogue.placement`): the
    deep-linking page, an entry point, calls both.
    """
    if len(item_ids) > 1 and not accepts_multiple(actor):
        raise BadRequest("The LMS accepts only one item here; choose one.")
    if len(set(item_ids)) != len(item_ids):
        raise BadRequest("The same item was chosen twice.")
    return item_ids


def content_item(settings: Settings, item: DeepLinkItem) -> dict:
    """An LtiResourceLink content item launching the tool with the item's custom parameters."""
    entry: dict = {
        "type": "ltiResourceLink",
        "title": item.title,
        "url": settings.url(LAUNCH_PATH),
        "custom": {str(k): str(v) for k, v in item.custom.items()},
    }
    if item.text:
        entry["text"] = item.text
    return entry


CANCELLED_MSG = "Nothing was added: the instructor cancelled."
NOTHING_APPROVED_MSG = "Nothing was added: no micro-credential is approved yet."


def response_claims(settings: Settings, platform: Platform, launch_data: dict,
                    items: list[DeepLinkItem], now: int | None = None,
                    msg: str | None = None) -> dict:
    """The LtiDeepLinkingResponse claims: from the tool (iss=client_id) to the platform; an
    empty `content_items` with a `msg` when nothing is placed (cancel, empty catalogue)."""
    now = int(time.time()) if now is None else now
    claims: dict = {
        "iss": platform.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now + RESPONSE_LIFETIME,
        "nonce": secrets.token_urlsafe(24),
        c.DEPLOYMENT_ID: launch_data["deployment_id"],
        c.MESSAGE_TYPE: c.DEEP_LINKING_RESPONSE,
        c.VERSION: c.LTI_VERSION,
        c.DL_CONTENT_ITEMS: [content_item(settings, item) for item in items],
    }
    if msg:
        claims[c.DL_MSG] = msg  # shown by the platform to the instructor
        claims[c.DL_LOG] = msg
    data = (launch_data.get("deep_linking_settings") or {}).get("data")
    if data is not None:
        claims[c.DL_DATA] = data  # opaque: echoed exactly as the platform sent it
    return claims


class _ContentItem(DeepLinkResource):
    """A content item as `content_item` builds it (pylti1p3's resource has no `text`)."""

    def __init__(self, entry: dict) -> None:
        self._entry = entry

    def to_dict(self) -> dict[str, object]:
        return dict(self._entry)


class _DeepLinkResponse(DeepLink):
    """pylti1p3's `DeepLink`, sending exactly the claims of `response_claims`.

    pylti1p3 alone would send `data: null` when the platform sent no data, and `aud` as a list.
    """

    def __init__(self, claims: dict, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._claims = claims

    def get_message_jwt(self, resources: Sequence[DeepLinkResource]) -> dict[str, object]:
        return {**self._claims, c.DL_CONTENT_ITEMS: [r.to_dict() for r in resources]}


def response_jwt(db: Session, settings: Settings, platform: Platform, launch_data: dict,
                 items: list[DeepLinkItem], msg: str | None = None) -> str:
    """The signed (RS256, the tool's `lti` key) deep-linking response."""
    claims = response_claims(settings, platform, launch_data, items, msg=msg)
    registration = DbToolConf(db, settings).registration_for(platform)
    response = _DeepLinkResponse(
        claims, registration=registration, deployment_id=launch_data["deployment_id"],
        deep_link_settings=launch_data.get("deep_linking_settings") or {})
    resources = [_ContentItem(entry) for entry in claims[c.DL_CONTENT_ITEMS]]
    return response.get_response_jwt(resources)


def return_url(actor: Actor) -> str:
    """Where the response goes: the deep_link_return_url of the request, checked at launch."""
    settings = actor.launch_data.get("deep_linking_settings") or {}
    url = settings.get("deep_link_return_url")
    if actor.message_type != c.DEEP_LINKING_REQUEST or not isinstance(url, str):
        raise Forbidden("This page belongs to a deep-linking launch: start it from the LMS "
                        "activity chooser.")
    return url
