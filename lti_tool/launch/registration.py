"""LTI Dynamic Registration 1.0 (the tool's side) and one-time registration invites.

The platform opens `/lti/register?openid_configuration=…&registration_token=…`. The tool fetches
the platform's OpenID configuration, checks it, POSTs its own client registration to the
platform's `registration_endpoint` and stores what comes back as a `Platform` keyed by
(issuer, client_id). Nothing is stored unless every step succeeded.

Spec: https://www.imsglobal.org/spec/lti-dr/v1p0
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlparse

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lti_tool.errors import BadRequest, Forbidden
from lti_tool.launch.platforms import PlatformSpec, register_platform, url_problem
from lti_tool.outbound import (
    OutboundClient,
    OutboundError,
    OutboundTimeout,
    OutboundTooLarge,
    client_for,
    host_key,
    log_error_body,
    summary,
)
from lti_tool.settings import Settings
from lti_tool.store import institutions
from lti_tool.store.db import changed_rows, utcnow
from lti_tool.store.models.core import LMS_KINDS, AuditEntry, Platform, RegistrationInvite

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
AGS_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
)
NRPS_SCOPES = ("https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",)
WANTED_SCOPES = AGS_SCOPES + NRPS_SCOPES
REQUIRED_ENDPOINTS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                      "registration_endpoint")
# Every Canvas cloud instance signs as one of these, but serves its configuration from the
# institution's own host or the shared SSO host: the spec's origin check cannot apply literally.
CANVAS_CLOUD_ISSUERS = ("https://canvas.instructure.com", "https://canvas.beta.instructure.com",
                        "https://canvas.test.instructure.com")
CANVAS_CLOUD_HOST_SUFFIXES = (".instructure.com", ".canvaslms.com")
CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email", "locale")
DEEP_LINKING_PLACEMENTS = ("ContentArea", "link_selection", "assignment_selection",
                           "https://canvas.instructure.com/lti/link_selection",
                           "https://canvas.instructure.com/lti/assignment_selection")
MAX_REPLY_BYTES = 256 * 1024
INVITE_DAYS = 7
TOOL_TITLE = "Micro-credentials"
TOOL_DESCRIPTION = ("Maps course gradebooks to micro-credential learning outcomes and issues "
                    "Open Badges 3.0 credentials to learners who complete them.")


# --- invites ----------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Invite:
    token: str
    url: str
    row: RegistrationInvite


def create_invite(db: Session, settings: Settings, *, institution_id: int | None = None,
                  note: str = "", days: int = INVITE_DAYS,
                  allow_shared_issuer: bool = False) -> Invite:
    """A one-time registration URL bound to an institution (the only one when None); only
    the token's SHA-256 is stored."""
    if days < 1 or days > 365:
        raise BadRequest("An invite must be valid for 1 to 365 days.")
    if institution_id is None:
        institution_id = institutions.resolve(db, None).id
    token = secrets.token_urlsafe(32)
    row = RegistrationInvite(token_hash=_hash(token), note=note[:255],
                             institution_id=institution_id,
                             allow_shared_issuer=allow_shared_issuer,
                             expires_at=utcnow() + timedelta(days=days))
    db.add(row)
    db.flush()
    return Invite(token=token, url=settings.url("/lti/register") + "?" +
                  urlencode({"invite": token}), row=row)


def check_invite(db: Session, token: str | None) -> RegistrationInvite:
    """The invite behind `token` if unused and unexpired; 403 naming the problem otherwise."""
    if not token:
        raise Forbidden("Registration is by invitation only: use the one-time URL the "
                        "Micro-credentials Office gave you (`lti-tool platform invite`).")
    row = db.scalar(select(RegistrationInvite).where(
        RegistrationInvite.token_hash == _hash(token[:200])))
    if row is None:
        raise Forbidden("This registration invite is not valid.")
    if row.used_at is not None:
        raise Forbidden("This registration invite has already been used; ask for a new one.")
    if row.expires_at <= utcnow():
        raise Forbidden("This registration invite has expired; ask for a new one.")
    return row


def consume_invite(db: Session, row: RegistrationInvite) -> None:
    """Mark used in the same transaction as the registration; loses cleanly to a racer."""
    claimed = changed_rows(db, update(RegistrationInvite)
                           .where(RegistrationInvite.id == row.id,
                                  RegistrationInvite.used_at.is_(None))
                           .values(used_at=utcnow()))
    if claimed != 1:
        raise Forbidden("This registration invite has already been used; ask for a new one.")


def check_policy(db: Session, settings: Settings, invite: str | None) -> RegistrationInvite | None:
    """Apply LTI_TOOL_DYNAMIC_REGISTRATION before the tool contacts anyone."""
    if settings.dynamic_registration == "off":
        raise Forbidden("Dynamic Registration is switched off for this tool; ask the "
                        "Micro-credentials Office to register your platform.")
    if settings.dynamic_registration == "invite" or invite:
        return check_invite(db, invite)
    return None  # open: the registration will be pending until an operator approves it


# --- the platform's configuration -------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = urlparse(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, (parsed.hostname or "").lower(), parsed.port or default


def _check_remote_url(settings: Settings, url: str, what: str) -> None:
    """The shape of a URL the platform names (the guarded client checks its address when the
    tool calls it)."""
    problem = url_problem(url)
    if problem:
        raise BadRequest(f"{what} {problem}")


def issuer_matches(issuer: str, configuration_url: str) -> bool:
    """The spec's check: the issuer has the origin of the configuration URL. Canvas cloud's
    shared issuers are accepted from Instructure's own hosts over HTTPS."""
    if _origin(issuer) == _origin(configuration_url):
        return True
    if issuer.rstrip("/") in CANVAS_CLOUD_ISSUERS:
        return _canvas_cloud(configuration_url)
    return False


def _canvas_cloud(url: str) -> bool:
    scheme, host, _port = _origin(url)
    return scheme == "https" and host.endswith(CANVAS_CLOUD_HOST_SUFFIXES)


@dataclass
class PlatformCall:
    """The guarded client for one registration attempt and its total deadline: however slow
    the platform, /lti/register holds a worker at most `registration_timeout_seconds`."""

    outbound: OutboundClient
    deadline_at: float
    seconds: float

    @classmethod
    def start(cls, settings: Settings, outbound: OutboundClient | None) -> PlatformCall:
        seconds = float(settings.registration_timeout_seconds)
        return cls(outbound or client_for(settings), time.monotonic() + seconds, seconds)

    def send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        client = self.outbound.for_hosts([host_key(url)])
        try:
            return client.request(method, url, max_bytes=MAX_REPLY_BYTES, what=what,
                                  deadline_at=self.deadline_at, follow_redirects=False,
                                  **kwargs)
        except OutboundTooLarge as exc:
            raise BadRequest(f"The platform's {what} is larger than {MAX_REPLY_BYTES} bytes."
                             ) from exc
        except (OutboundTimeout, requests.Timeout) as exc:
            raise BadRequest(f"The platform's {what} did not arrive within {self.seconds:g} s "
                             "(the time the tool gives a whole registration).") from exc
        except OutboundError as exc:
            raise BadRequest(f"The tool did not fetch the platform's {what}: {exc.message}"
                             ) from exc
        except requests.RequestException as exc:
            raise BadRequest(f"Could not reach the platform for its {what} at {summary(url)}: "
                             f"{exc.__class__.__name__}") from exc


def _json_reply(reply: requests.Response, what: str) -> dict:
    try:
        body = json.loads(reply.content)
    except ValueError as exc:
        raise BadRequest(f"The platform's {what} is not JSON (HTTP {reply.status_code}).") from exc
    if not isinstance(body, dict):
        raise BadRequest(f"The platform's {what} is not a JSON object.")
    return body


def fetch_platform_configuration(settings: Settings, url: str, call: PlatformCall,
                                 registration_token: str | None = None) -> dict:
    """GET and validate the platform's OpenID configuration."""
    _check_remote_url(settings, url, "openid_configuration")
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    reply = call.send("GET", url, "OpenID configuration", headers=headers)
    if reply.status_code != 200:
        log_error_body("Dynamic Registration: OpenID configuration", reply)
        raise BadRequest(f"The platform answered HTTP {reply.status_code} for its OpenID "
                         f"configuration at {summary(url)}.")
    config = _json_reply(reply, "OpenID configuration")
    missing = [name for name in REQUIRED_ENDPOINTS if not isinstance(config.get(name), str)
               or not config.get(name)]
    if missing:
        raise BadRequest(f"The platform's OpenID configuration lacks {', '.join(missing)}.")
    for name in REQUIRED_ENDPOINTS:
        _check_remote_url(settings, config[name], f"The platform's {name}")
    if not issuer_matches(config["issuer"], url):
        raise BadRequest(f"The platform's issuer {config['issuer']!r} does not match the origin "
                         f"of its configuration URL {url!r}.")
    endpoint = config["registration_endpoint"]
    if host_key(endpoint) != host_key(url) and not (_canvas_cloud(endpoint)
                                                    and _canvas_cloud(url)):
        raise BadRequest(f"The platform's registration_endpoint ({host_key(endpoint)}) is not on "
                         f"the host of its configuration URL ({host_key(url)}).")
    platform_config = config.get(PLATFORM_CONFIGURATION)
    if not isinstance(platform_config, dict):
        raise BadRequest(f"The platform's OpenID configuration lacks {PLATFORM_CONFIGURATION}.")
    message_types = {m.get("type") for m in platform_config.get("messages_supported") or []
                     if isinstance(m, dict)}
    if "LtiResourceLinkRequest" not in message_types:
        raise BadRequest("The platform does not support LtiResourceLinkRequest messages.")
    algorithms = config.get("id_token_signing_alg_values_supported") or ["RS256"]
    if "RS256" not in algorithms:
        raise BadRequest("The platform does not sign id_tokens with RS256.")
    auth_methods = config.get("token_endpoint_auth_methods_supported") or ["private_key_jwt"]
    if "private_key_jwt" not in auth_methods:
        raise BadRequest("The platform does not accept private_key_jwt client assertions.")
    return config


def lms_kind_of(config: dict) -> str:
    family = str((config.get(PLATFORM_CONFIGURATION) or {}).get("product_family_code", ""))
    family = family.lower()
    return family if family in LMS_KINDS else "other"


# --- the tool's registration ------------------------------------------------------------------


def tool_domain(settings: Settings) -> str:
    """host[:port] of the tool; Moodle refuses a domain without the target_link_uri's port."""
    return urlparse(settings.base_url).netloc.rsplit("@", 1)[-1]


def _messages(settings: Settings, config: dict, kind: str) -> list[dict]:
    platform_messages = (config.get(PLATFORM_CONFIGURATION) or {}).get("messages_supported") or []
    offered: dict[str, list[str]] = {}
    for message in platform_messages:
        if isinstance(message, dict) and isinstance(message.get("type"), str):
            offered[message["type"]] = [p for p in message.get("placements") or []
                                        if isinstance(p, str)]
    resource_link: dict = {"type": "LtiResourceLinkRequest",
                           "target_link_uri": settings.url("/lti/launch"),
                           "label": TOOL_TITLE}
    if kind == "canvas":
        resource_link["placements"] = ["course_navigation"]
    messages = [resource_link]
    if "LtiDeepLinkingRequest" in offered:
        placements = [p for p in offered["LtiDeepLinkingRequest"]
                      if p in DEEP_LINKING_PLACEMENTS]
        if kind == "canvas" and not placements:
            placements = ["link_selection", "assignment_selection"]
        deep_linking: dict = {"type": "LtiDeepLinkingRequest",
                              "target_link_uri": settings.url("/lti/launch"),
                              "label": TOOL_TITLE}
        if placements:
            deep_linking["placements"] = placements
        messages.append(deep_linking)
    return messages


def tool_registration_request(settings: Settings, config: dict) -> dict:
    """The client registration the tool POSTs (OpenID Connect Dynamic Client Registration with
    the LTI tool configuration)."""
    kind = lms_kind_of(config)
    offered = set(config.get("scopes_supported") or [])
    scopes = [s for s in WANTED_SCOPES if s in offered] if offered else list(WANTED_SCOPES)
    tool_configuration: dict = {
        "domain": tool_domain(settings),
        "target_link_uri": settings.url("/lti/launch"),
        "custom_parameters": {"context_id_history": "$Context.id.history"},
        "claims": list(CLAIMS),
        "messages": _messages(settings, config, kind),
        "description": TOOL_DESCRIPTION,
    }
    if kind == "canvas":
        tool_configuration["https://canvas.instructure.com/lti/privacy_level"] = "public"
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": settings.url("/lti/login"),
        "redirect_uris": [settings.url("/lti/launch")],
        "client_name": TOOL_TITLE,
        "jwks_uri": settings.url("/lti/jwks"),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIGURATION: tool_configuration,
    }


def post_registration(config: dict, payload: dict, registration_token: str | None,
                      call: PlatformCall) -> dict:
    """POST the registration; a refusal is a 400 naming its status (its body is logged)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    reply = call.send("POST", config["registration_endpoint"], "registration reply",
                      json=payload, headers=headers)
    if reply.status_code not in (200, 201):
        log_error_body("Dynamic Registration refused", reply)
        raise BadRequest(f"The platform refused the registration (HTTP {reply.status_code}). "
                         "Its administrator can see why in the platform's logs; the tool's log "
                         "has the platform's answer.")
    body = _json_reply(reply, "registration reply")
    if not isinstance(body.get("client_id"), str | int) or not str(body["client_id"]).strip():
        raise BadRequest("The platform's registration reply has no client_id.")
    return body


def lms_hosts_of(config: dict, configuration_url: str) -> list[str]:
    """LMS hosts the platform's configuration names besides its endpoints: the host that
    served the configuration and the registration endpoint's (Canvas serves its services from
    the institution's host, not from its shared token and key hosts)."""
    return sorted({host_key(configuration_url), host_key(config["registration_endpoint"])})


def spec_from_registration(config: dict, reply: dict,
                           configuration_url: str | None = None) -> PlatformSpec:
    tool_config = reply.get(TOOL_CONFIGURATION) or {}
    deployment_id = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    platform_config = config.get(PLATFORM_CONFIGURATION) or {}
    kind = lms_kind_of(config)
    name = (platform_config.get("https://canvas.instructure.com/lti/account_name")
            or f"{kind.capitalize() if kind != 'other' else 'LMS'} "
               f"{urlparse(config['issuer']).netloc}")
    return PlatformSpec(
        issuer=config["issuer"],
        client_id=str(reply["client_id"]),
        auth_login_url=config["authorization_endpoint"],
        auth_token_url=config["token_endpoint"],
        key_set_url=config["jwks_uri"],
        auth_audience=config.get("authorization_server") or None,
        name=str(name)[:255],
        lms_kind=kind,
        deployments=[str(deployment_id)] if deployment_id not in (None, "") else [],
        registered_via="dynamic",
        lms_hosts=lms_hosts_of(config, configuration_url or config["registration_endpoint"]),
    )


def register_dynamically(
    db: Session,
    settings: Settings,
    *,
    openid_configuration: str | None,
    registration_token: str | None = None,
    invite: str | None = None,
    outbound: OutboundClient | None = None,
) -> Platform:
    """The whole flow; the caller commits. Any failure raises before a row is written."""
    invite_row = check_policy(db, settings, invite)
    if not openid_configuration:
        raise BadRequest("The openid_configuration parameter is missing: start the registration "
                         "from your LMS (Moodle: 'Register tool by URL'; Canvas: 'LTI 1.3 "
                         "Registration').")
    if registration_token is not None and len(registration_token) > 4096:
        raise BadRequest("The registration_token is too long.")
    call = PlatformCall.start(settings, outbound)
    config = fetch_platform_configuration(settings, openid_configuration, call,
                                          registration_token)
    reply = post_registration(config, tool_registration_request(settings, config),
                              registration_token, call)
    spec = spec_from_registration(config, reply, openid_configuration).validate()
    # An existing (issuer, client_id) is never overwritten from outside: 409. With an invite
    # the registration is active at once in the invite's institution; without one (policy
    # open) it waits, pending and without rights, for an operator's `platform approve`.
    if invite_row is not None:
        platform = register_platform(
            db, spec, institution_id=invite_row.institution_id, status="active",
            allow_shared_issuer=invite_row.allow_shared_issuer,
            shared_issuers=settings.shared_issuers)
        consume_invite(db, invite_row)
    else:
        platform = register_platform(db, spec, status="pending",
                                     institution_id=institutions.pending_institution(db).id)
    db.add(AuditEntry(institution_id=platform.institution_id, platform_id=platform.id,
                      actor_label="dynamic registration",
                      action="platform.register", target=f"{spec.issuer} {spec.client_id}",
                      details={"deployments": spec.deployments, "lms_kind": spec.lms_kind}))
    db.flush()
    return platform


# --- Canvas developer key ---------------------------------------------------------------------


CANVAS_CUSTOM_FIELDS = {
    "canvas_course_id": "$Canvas.course.id",
    "canvas_user_id": "$Canvas.user.id",
    "canvas_api_domain": "$Canvas.api.domain",
    "context_id_history": "$Context.id.history",
}


def canvas_developer_key(settings: Settings, *, title: str = TOOL_TITLE) -> dict:
    """The JSON an admin pastes into Canvas (Developer Keys > + LTI Key > Paste JSON)."""
    launch = settings.url("/lti/launch")

    def placement(name: str, message_type: str) -> dict:
        return {"placement": name, "message_type": message_type, "target_link_uri": launch,
                "text": title}

    return {
        "title": title,
        "description": TOOL_DESCRIPTION,
        "target_link_uri": launch,
        "oidc_initiation_url": settings.url("/lti/login"),
        "public_jwk_url": settings.url("/lti/jwks"),
        "scopes": list(WANTED_SCOPES),
        "extensions": [{
            "platform": "canvas.instructure.com",
            "domain": tool_domain(settings),
            "tool_id": "lti-microcredentials",
            "privacy_level": "public",
            "settings": {
                "text": title,
                "placements": [
                    placement("course_navigation", "LtiResourceLinkRequest"),
                    placement("link_selection", "LtiDeepLinkingRequest"),
                    placement("assignment_selection", "LtiDeepLinkingRequest"),
                ],
            },
        }],
        "custom_fields": dict(CANVAS_CUSTOM_FIELDS),
    }
