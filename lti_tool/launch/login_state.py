"""The OIDC login's state and nonce, carried by the state itself: a login writes no row.

The state is a signed, timestamped token (itsdangerous, keyed by the app's secret) naming the
registration it was issued for, a digest of the login's target_link_uri, the platform-storage
target and a random part; the nonce is an HMAC of the state. Any worker process holding the
secret can check a launch against it, and the launch's `UsedNonce` row (unique per registration
and nonce, kept until the state has expired) makes it single-use. A login initiation therefore
costs no write and no commit, and a flood of them fills no table.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

LIFETIME = timedelta(minutes=10)
SALT = "lti-tool.login-state"


class StateRefused(ValueError):
    """A state this tool did not issue, or one whose lifetime has passed (`expired`)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class LoginState:
    """What a login issued, read back from its state by the launch."""

    state: str
    nonce: str
    platform_id: int
    target_digest: str
    storage_target: str | None
    expires_at: datetime

    def target_matches(self, target_link_uri: str) -> bool:
        return hmac.compare_digest(self.target_digest, target_digest(target_link_uri))


def target_digest(target_link_uri: str) -> str:
    """A short digest of the target_link_uri: the state stays short (platform storage keeps it
    under a size limit, 4,096 characters per tool in Canvas), the check stays exact enough."""
    return hashlib.sha256(target_link_uri.encode()).hexdigest()[:16]


def _serializer(secret: str | bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def _nonce(secret: str | bytes, state: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, b"nonce:" + state.encode(), hashlib.sha256).hexdigest()[:40]


def issue(secret: str | bytes, platform_id: int, target_link_uri: str,
          storage_target: str | None) -> LoginState:
    """A fresh state and nonce for a login initiation of registration `platform_id`."""
    digest = target_digest(target_link_uri)
    # [registration, target digest, storage target, random part]: the random part makes every
    # login's state (and so its nonce) unique, also two in the same second
    state = _serializer(secret).dumps([platform_id, digest, storage_target,
                                       secrets.token_urlsafe(9)])
    assert isinstance(state, str)
    return LoginState(state=state, nonce=_nonce(secret, state), platform_id=platform_id,
                      target_digest=digest, storage_target=storage_target,
                      expires_at=datetime.now(UTC) + LIFETIME)


def read(secret: str | bytes, state: str, now: float | None = None) -> LoginState:
    """The login `state` stands for; `StateRefused` when this tool did not sign it or its
    lifetime has passed."""
    serializer = _serializer(secret)
    try:
        payload, issued = serializer.loads(state, max_age=int(LIFETIME.total_seconds()),
                                           return_timestamp=True)
    except SignatureExpired as exc:
        raise StateRefused("expired", expired=True) from exc
    except BadSignature as exc:
        raise StateRefused("not issued by this tool") from exc
    if now is not None and now - issued.timestamp() > LIFETIME.total_seconds():
        raise StateRefused("expired", expired=True)
    if not (isinstance(payload, list) and len(payload) == 4
            and isinstance(payload[0], int) and isinstance(payload[1], str)
            and isinstance(payload[2], str | type(None))):
        raise StateRefused("not issued by this tool")  # signed, but not a login state
    return LoginState(state=state, nonce=_nonce(secret, state), platform_id=payload[0],
                      target_digest=payload[1], storage_target=payload[2],
                      expires_at=issued + LIFETIME)
