"""LTI Advantage service tokens: OAuth 2 client credentials with a signed JWT client assertion.

The assertion is signed with the tool's `lti` key (the LMS verifies it against our JWKS, which
is why the key carries `kid` and `alg`). Tokens are cached per (platform, scope set) until
shortly before they expire, so a sync of many pages asks the LMS for one token.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests
from jwcrypto import jwt
from sqlalchemy.orm import Session, sessionmaker

from lti_tool.lms.http import LmsBadReply, LmsHttp, LmsPermissionError, json_body
from lti_tool.outbound import log_error_body
from lti_tool.settings import Settings
from lti_tool.store import keys
from lti_tool.store.models.core import Platform

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300
# Refresh this many seconds before the LMS says the token expires.
EXPIRY_MARGIN = 60


@dataclass(frozen=True)
class CachedToken:
    access_token: str
    expires_at: float
    scopes: frozenset[str]


class TokenCache:
    """Process-wide cache of access tokens, keyed by platform registration and scope set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple, CachedToken] = {}

    @staticmethod
    def key(platform: Platform, scopes: frozenset[str]) -> tuple:
        return (platform.id, platform.client_id, platform.auth_token_url, scopes)

    def get(self, key: tuple, now: float) -> CachedToken | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and token.expires_at - EXPIRY_MARGIN > now:
                return token
            self._tokens.pop(key, None)
            return None

    def put(self, key: tuple, token: CachedToken) -> None:
        with self._lock:
            self._tokens[key] = token

    def drop(self, key: tuple) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


CACHE = TokenCache()


def publish_signing_key(factory: sessionmaker[Session], settings: Settings) -> None:
    """Make sure the `lti` key exists and is committed before the LMS fetches our JWKS.

    A key created inside a long sync transaction would be invisible to the LMS (and, on SQLite,
    would hold the write lock the JWKS request needs), so callers publish it first.
    """
    with factory() as db:
        keys.active_key(db, settings, "lti")
        db.commit()


def client_assertion(db: Session, settings: Settings, platform: Platform) -> str:
    """A short-lived JWT that proves to the LMS that this request comes from the tool."""
    key = keys.signing_jwk(db, settings, "lti")
    now = int(time.time())
    claims = {
        "iss": platform.client_id,
        "sub": platform.client_id,
        "aud": platform.auth_audience or platform.auth_token_url,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.JWT(header={"alg": "RS256", "kid": key.get("kid"), "typ": "JWT"}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


class ServiceTokens:
    """Access tokens for one platform; `token(scopes)` is what the AGS/NRPS clients call."""

    def __init__(
        self,
        db: Session,
        settings: Settings,
        platform: Platform,
        http: LmsHttp,
        cache: TokenCache = CACHE,
    ) -> None:
        self.db = db
        self.settings = settings
        self.platform = platform
        self.http = http
        self.cache = cache

    def token(self, scopes: Iterable[str]) -> str:
        scope_set = frozenset(scopes)
        key = self.cache.key(self.platform, scope_set)
        cached = self.cache.get(key, time.time())
        if cached is not None:
            return cached.access_token
        fresh = self._request(scope_set)
        self.cache.put(key, fresh)
        return fresh.access_token

    def invalidate(self, scopes: Iterable[str]) -> None:
        """Forget a token the LMS no longer accepts (it was revoked or the LMS restarted)."""
        self.cache.drop(self.cache.key(self.platform, frozenset(scopes)))

    def _request(self, scopes: frozenset[str]) -> CachedToken:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(self.db, self.settings, self.platform),
            "scope": " ".join(sorted(scopes)),
        }
        needed = ", ".join(sorted(scopes))
        started = time.time()
        # A client-credentials grant has no side effect, so retrying it is safe.
        response = self.http.post(self.platform.auth_token_url, data=form, needed=needed,
                                  idempotent=True, headers={"Accept": "application/json"},
                                  what="the token endpoint")
        if response.status_code == 400:
            raise LmsPermissionError(_token_refusal(response, needed))
        body = json_body(response, "the service token request")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise LmsBadReply("The LMS token endpoint answered without an access_token.")
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        granted = body.get("scope")
        granted_set = frozenset(granted.split()) if isinstance(granted, str) else scopes
        return CachedToken(body["access_token"], started + max(0.0, lifetime), granted_set)


OAUTH_ERRORS = ("invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope")


def _token_refusal(response: requests.Response, needed: str) -> str:
    """The refusal in the tool's words: only a standard OAuth error code is repeated (the
    LMS's description is logged, never shown)."""
    log_error_body("LMS token refusal", response)
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    error = body.get("error", "") if isinstance(body, dict) else ""
    if error == "invalid_scope":
        return (f"The LMS refused the scopes the tool asked for ({needed}). Enable the "
                "matching LTI Advantage services for the tool in the LMS.")
    code = error if error in OAUTH_ERRORS else f"HTTP {response.status_code}"
    return (f"The LMS refused the tool's token request ({code}). Check that the LMS has the "
            "tool's public key set URL and client id right.")
