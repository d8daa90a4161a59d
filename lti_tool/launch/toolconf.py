"""pylti1p3's tool configuration, read from the Platform and Deployment tables.

pylti1p3 finds registrations and deployments through a `ToolConfAbstract`. This one answers
from the database, always by (issuer, client_id): every Canvas cloud school signs as
`https://canvas.instructure.com`, so the issuer alone never names a registration, and the
issuer-only lookups refuse instead of guessing. The tool key pylti1p3 signs with (deep-linking
responses) and the JWKS it publishes are the tool's own `lti` key from `lti_tool.store.keys`,
with the `kid` the tool publishes at /lti/jwks (pylti1p3 would otherwise derive a thumbprint
kid that no platform can find).

Where this configuration is used, and which gaps of pylti1p3 the tool closes itself, is listed
in the README ("What pylti1p3 does and what the tool does itself").
"""

from __future__ import annotations

from typing import Any, cast

import requests
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.exception import LtiException
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.registration import Registration
from pylti1p3.request import Request
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy.orm import Session

from lti_tool.launch.platforms import find_deployment, find_platform
from lti_tool.settings import Settings
from lti_tool.store import keys as tool_keys
from lti_tool.store.models.core import Deployment, Platform


class DbRegistration(Registration):
    """A pylti1p3 `Registration` for one Platform row, signing with the tool's `lti` key.

    The private key is read only when pylti1p3 asks for it (signing), not on every launch.
    """

    def __init__(self, platform: Platform, db: Session, settings: Settings) -> None:
        self.platform = platform
        self._db = db
        self._settings = settings
        self._private_pem: str | None = None
        self._public_pem: str | None = None
        self._kid: str | None = None
        self.set_issuer(platform.issuer).set_client_id(platform.client_id)
        self.set_auth_login_url(platform.auth_login_url)
        self.set_auth_token_url(platform.auth_token_url)
        self.set_key_set_url(platform.key_set_url)
        self.set_key_set(platform.key_set if isinstance(platform.key_set, dict) else None)
        if platform.auth_audience:
            self.set_auth_audience(platform.auth_audience)

    def _load_key(self) -> None:
        if self._private_pem is not None:
            return
        row = tool_keys.active_key(self._db, self._settings, "lti")
        key = tool_keys.private_jwk(row, self._settings)
        self._private_pem = key.export_to_pem(private_key=True, password=None).decode()
        self._public_pem = key.export_to_pem().decode()
        self._kid = row.kid

    def get_tool_private_key(self) -> str | None:
        self._load_key()
        return self._private_pem

    def get_tool_public_key(self) -> str | None:
        self._load_key()
        return self._public_pem

    def get_kid(self) -> str | None:
        """The kid published at /lti/jwks (pylti1p3 would compute a thumbprint instead)."""
        self._load_key()
        return self._kid

    def get_jwks(self) -> list[dict[str, Any]]:
        """Every published `lti` key, the previous one included during its grace period."""
        return tool_keys.public_jwks(self._db, self._settings, "lti")["keys"]


class DbToolConf(ToolConfAbstract):
    """Registrations by (issuer, client_id) and deployments from the database, for pylti1p3.

    A deployment is known when its row exists and is enabled, or, for a registration that opted
    in to new deployments, whatever its id: pylti1p3 assumes every deployment is registered in
    advance, while Canvas makes one per course install (the launch then records it).
    """

    def __init__(self, db: Session, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._registrations: dict[tuple[str, str], DbRegistration | None] = {}
        # the deployment rows `find_deployment_by_params` read, for the launch to reuse
        self.deployment_rows: dict[tuple[int, str], Deployment | None] = {}

    def remember(self, platform: Platform,
                 deployments: dict[str, Deployment | None] | None = None) -> None:
        """A registration the caller already read (the launch's aud lookup), and its rows for
        some deployment ids (None: not registered): no second query."""
        self._registrations[(platform.issuer, platform.client_id)] = DbRegistration(
            platform, self._db, self._settings)
        for deployment_id, row in (deployments or {}).items():
            self.deployment_rows[(platform.id, deployment_id)] = row

    # pylti1p3 keeps the issuer -> "one or many client ids" relation in a class-level dict
    # shared by every configuration; answer "many" for every issuer without touching it.
    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        raise LtiException(f"A registration is found by issuer and client_id, never by the "
                           f"issuer {iss!r} alone.")

    def find_registration_by_params(self, iss: str, client_id: str, *args: Any,
                                    **kwargs: Any) -> DbRegistration | None:
        """The registration for (iss, client_id), or None (pylti1p3's "not found")."""
        lookup = (iss, client_id)
        if lookup not in self._registrations:
            platform = find_platform(self._db, iss, client_id)
            self._registrations[lookup] = (
                None if platform is None else DbRegistration(platform, self._db, self._settings))
        return self._registrations[lookup]

    def registration_for(self, platform: Platform) -> DbRegistration:
        """The registration of a Platform row already in hand."""
        found = self.find_registration_by_params(platform.issuer, platform.client_id)
        if found is None:
            raise LtiException(f"Platform {platform.id} is not registered any more.")
        return found

    def find_deployment(self, iss: str, deployment_id: str) -> LtiDeployment | None:
        raise LtiException(f"A deployment is found by issuer and client_id, never by the "
                           f"issuer {iss!r} alone.")

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str,
                                  *args: Any, **kwargs: Any) -> LtiDeployment | None:
        registration = self.find_registration_by_params(iss, client_id)
        if registration is None:
            return None
        platform = registration.platform
        lookup = (platform.id, deployment_id)
        if lookup in self.deployment_rows:
            row = self.deployment_rows[lookup]
        else:
            row = self.deployment_rows[lookup] = find_deployment(self._db, platform,
                                                                 deployment_id)
        if row is None and not platform.auto_accept_deployments:
            return None
        if row is not None and not row.enabled:
            return None
        return LtiDeployment().set_deployment_id(deployment_id)

    def get_jwks(self, iss: str | None = None, client_id: str | None = None,
                 **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
        """The tool's public keys: one key pair serves every registration."""
        return tool_keys.public_jwks(self._db, self._settings, "lti")


class _NoRequest(Request):
    """pylti1p3 wants a request; the checks run here read no request parameters."""

    def is_secure(self) -> bool:
        return True

    def get_param(self, key: str) -> str:
        return ""


_UNUSED = cast(Any, object())  # session and cookie services: state and nonce are the tool's
_UNUSED_HTTP = requests.Session()  # never used: the tool fetches platform keys itself


class ClaimsLaunch(MessageLaunch):
    """pylti1p3's own launch checks on claims the tool has already parsed and verified.

    It runs pylti1p3's `validate_registration` (through `DbToolConf`), `validate_deployment`
    and `validate_message`. Its state, nonce and signature steps are not run: pylti1p3 keeps
    state and nonce in a session without consuming the nonce, and fetches the platform JWKS on
    every launch; `validation` and `flow` do those. `client_id` is the one the tool chose from
    `aud` and `azp`: pylti1p3 alone takes the first audience and ignores `azp`.
    """

    def __init__(self, tool_conf: DbToolConf, claims: dict, client_id: str) -> None:
        super().__init__(_NoRequest(), tool_conf, session_service=_UNUSED,
                         cookie_service=_UNUSED, requests_session=_UNUSED_HTTP)
        self._client_id = client_id
        self.set_auto_validation(enable=False).set_jwt({"body": claims})  # type: ignore[typeddict-item]

    def _get_request_param(self, key: str) -> str:
        return ""

    def get_client_id(self) -> str:
        return self._client_id

    @property
    def registration(self) -> DbRegistration:
        """The registration pylti1p3 found (after `validate_registration`)."""
        if not isinstance(self._registration, DbRegistration):
            raise LtiException("Registration not yet validated.")
        return self._registration
