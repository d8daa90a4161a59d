"""OIDC third-party login initiation: find the registration, mint state and nonce, and build
the authentication request to the platform.

State and nonce are carried by the state itself (`lti_tool.launch.login_state`: signed, single
use through the launch's nonce row, short expiry) so that any worker process can finish the
launch and a login writes nothing; the browser is bound to the state either by a cookie or,
when the platform offers it (`lti_storage_target`), by LTI platform storage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse

from sqlalchemy.orm import Session

from lti_tool.errors import BadRequest
from lti_tool.launch import login_state
from lti_tool.launch.platforms import (
    find_platform,
    platforms_for_issuer,
    require_active,
    url_problem,
)
from lti_tool.outbound import host_key, hosts_of, url_on_hosts
from lti_tool.settings import Settings
from lti_tool.store.models.core import Platform

LAUNCH_PATH = "/lti/launch"
STORAGE_TARGET = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
PARAM_MAX = 4096
# The parameters of a login initiation worth repeating when it is restarted in a new window.
LOGIN_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id",
                "lti_deployment_id", "canvas_region", "canvas_environment")


class LoginError(BadRequest):
    code = "invalid_login"


@dataclass(frozen=True)
class LoginStart:
    """What the login endpoint answers with: where to send the browser and what to remember."""

    platform: Platform
    state: str
    nonce: str
    auth_url: str
    storage_target: str | None

    @property
    def platform_origin(self) -> str:
        return platform_origin(self.platform)


def platform_origin(platform: Platform) -> str:
    """The origin postMessage must target: the platform's OIDC auth endpoint's origin."""
    parsed = urlparse(platform.auth_login_url)
    return f"{parsed.scheme}://{parsed.netloc}"


def _param(params: Mapping[str, str], name: str, *, required: bool) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise LoginError(f"The login request has no {name} parameter.")
        return None
    if len(value) > PARAM_MAX:
        raise LoginError(f"The login request parameter {name} is longer than {PARAM_MAX} "
                         "characters.")
    if "\x00" in value:
        raise LoginError(f"The login request parameter {name} contains a NUL character.")
    return value


def find_login_platform(db: Session, issuer: str, client_id: str | None) -> Platform:
    """The registration for (iss, client_id); by issuer alone only when it is unambiguous."""
    if client_id is not None:
        platform = find_platform(db, issuer, client_id)
        if platform is None:
            known = "registered" if platforms_for_issuer(db, issuer) else "unknown"
            raise LoginError(f"No registration for client_id {client_id!r} of issuer {issuer!r} "
                             f"(the issuer is {known}).")
        return platform
    candidates = platforms_for_issuer(db, issuer)
    if not candidates:
        raise LoginError(f"Unknown issuer {issuer!r}: no platform registration has this issuer.")
    if len(candidates) > 1:
        raise LoginError(f"Issuer {issuer!r} has {len(candidates)} registrations; the login "
                         "request must carry client_id to say which one.")
    return candidates[0]


def login_problem(platform: Platform) -> None:
    """The browser is sent to the registration's auth_login_url: only over HTTPS (HTTP on
    loopback) and only on a host of the registration's LMS (its issuer, token endpoint, key set
    or recorded LMS hosts), so a registration cannot make /lti/login an open redirect to a
    host of its choosing."""
    problem = url_problem(platform.auth_login_url)
    if problem:
        raise LoginError(f"The registration's auth_login_url {problem}.")
    lms = hosts_of((platform.issuer, platform.auth_token_url, platform.key_set_url),
                   platform.lms_hosts or ())
    if not url_on_hosts(platform.auth_login_url, lms):
        where = host_key(platform.auth_login_url)
        raise LoginError(f"The registration's auth_login_url is on {where}, which is not a "
                         f"host of its LMS ({', '.join(lms)}); the tool does "
                         "not send browsers there. The operator can record it as an LMS host.")


def begin_login(db: Session, settings: Settings, params: Mapping[str, str],
                secret: str | bytes) -> LoginStart:
    """Validate a login initiation and mint its state and nonce (signed with `secret`, the
    app's secret key); reads the registration, writes nothing."""
    issuer = _param(params, "iss", required=True)
    login_hint = _param(params, "login_hint", required=True)
    target_link_uri = _param(params, "target_link_uri", required=True)
    assert issuer and login_hint and target_link_uri
    parsed = urlparse(target_link_uri)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(target_link_uri) > 1000:
        raise LoginError(f"target_link_uri {target_link_uri[:200]!r} is not an http(s) URL.")
    client_id = _param(params, "client_id", required=False)
    message_hint = _param(params, "lti_message_hint", required=False)
    storage_target = _param(params, "lti_storage_target", required=False)
    if storage_target is not None and not STORAGE_TARGET.match(storage_target):
        raise LoginError("lti_storage_target must be a frame name such as _parent or "
                         "post_message_forwarding.")
    platform = find_login_platform(db, issuer, client_id)
    require_active(platform)  # a pending registration gets no redirect and no login state
    login_problem(platform)
    issued = login_state.issue(secret, platform.id, target_link_uri, storage_target)
    state, nonce = issued.state, issued.nonce
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": settings.url(LAUNCH_PATH),
        "login_hint": login_hint,
        "state": state,
        "nonce": nonce,
    }
    if message_hint is not None:
        query["lti_message_hint"] = message_hint  # Moodle's JSON or Canvas's JWT, unchanged
    separator = "&" if urlparse(platform.auth_login_url).query else "?"
    auth_url = platform.auth_login_url + separator + urlencode(query)
    return LoginStart(platform=platform, state=state, nonce=nonce, auth_url=auth_url,
                      storage_target=storage_target)
