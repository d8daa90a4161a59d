"""The tool's signing keys: created on first use, published as JWKS, rotated with a grace period.

One table serves every purpose: `lti` (RS256, signs client assertions and deep-linking
responses), `badge-rsa` (RS256 VC-JWT) and `badge-ed25519` (EdDSA / eddsa-rdfc-2022). LTI keys
stay published for `key_grace_seconds` after rotation, so tokens signed just before still verify;
badge keys stay published for ever, so credentials signed before a rotation still verify.
Private keys live in 0600 files under `data_dir/keys` or, with `key_storage = "database"`, in the
database.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from jwcrypto import jwk
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lti_tool.secrets import read_secret, write_secret
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import ToolKey

ALGORITHMS = {"lti": "RS256", "badge-rsa": "RS256", "badge-ed25519": "EdDSA"}
PUBLISHED_FOR_EVER = ("badge-rsa", "badge-ed25519")


def _generate(algorithm: str) -> jwk.JWK:
    if algorithm == "RS256":
        return jwk.JWK.generate(kty="RSA", size=2048)
    return jwk.JWK.generate(kty="OKP", crv="Ed25519")


def _public_dict(key: jwk.JWK, kid: str, algorithm: str) -> dict:
    public = key.export_public(as_dict=True)
    public.update({"kid": kid, "alg": algorithm, "use": "sig"})
    return public


def _create(db: Session, settings: Settings, purpose: str) -> ToolKey:
    algorithm = ALGORITHMS[purpose]
    key = _generate(algorithm)
    kid = f"{purpose}-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    pem = key.export_to_pem(private_key=True, password=None)
    row = ToolKey(kid=kid, purpose=purpose, algorithm=algorithm,
                  public_jwk=_public_dict(key, kid, algorithm), active=True)
    if settings.key_storage == "database":
        row.private_pem = pem.decode()
    else:
        path = Path(settings.data_dir) / "keys" / f"{kid}.pem"
        write_secret(path, pem)
        row.private_path = str(path.resolve())
    db.add(row)
    db.flush()
    return row


def active_key(db: Session, settings: Settings, purpose: str = "lti") -> ToolKey:
    """The current key for `purpose`, generated on first use."""
    if purpose not in ALGORITHMS:
        raise ValueError(f"unknown key purpose {purpose!r}")
    row = db.scalar(
        select(ToolKey).where(ToolKey.purpose == purpose, ToolKey.active.is_(True))
        .order_by(ToolKey.id.desc())
    )
    return row or _create(db, settings, purpose)


def private_jwk(row: ToolKey) -> jwk.JWK:
    """The private key of `row` as a jwcrypto JWK carrying its `kid`."""
    pem = row.private_pem.encode() if row.private_pem else read_secret(Path(row.private_path or ""))
    key = jwk.JWK.from_pem(pem)
    key.update(kid=row.kid, alg=row.algorithm, use="sig")
    return key


def signing_jwk(db: Session, settings: Settings, purpose: str = "lti") -> jwk.JWK:
    return private_jwk(active_key(db, settings, purpose))


def published_keys(db: Session, settings: Settings, purpose: str = "lti") -> list[ToolKey]:
    """Active key plus retired keys still inside their publication window."""
    active_key(db, settings, purpose)
    now = utcnow()
    return list(db.scalars(
        select(ToolKey).where(
            ToolKey.purpose == purpose,
            or_(ToolKey.active.is_(True), ToolKey.publish_until.is_(None),
                ToolKey.publish_until > now),
        ).order_by(ToolKey.id)
    ))


def public_jwks(db: Session, settings: Settings, purpose: str = "lti") -> dict:
    return {"keys": [dict(row.public_jwk) for row in published_keys(db, settings, purpose)]}


def find_public_key(db: Session, kid: str) -> ToolKey | None:
    """Any key ever used, by kid (verification of old credentials needs retired keys)."""
    return db.scalar(select(ToolKey).where(ToolKey.kid == kid))


def rotate(db: Session, settings: Settings, purpose: str = "lti") -> tuple[ToolKey, ToolKey | None]:
    """Make a new active key; the old one stays published (LTI: for the grace period)."""
    old = db.scalar(
        select(ToolKey).where(ToolKey.purpose == purpose, ToolKey.active.is_(True))
        .order_by(ToolKey.id.desc())
    )
    if old is not None:
        old.active = False
        old.retired_at = utcnow()
        old.publish_until = (
            None if purpose in PUBLISHED_FOR_EVER
            else utcnow() + timedelta(seconds=settings.key_grace_seconds)
        )
        db.flush()
    return _create(db, settings, purpose), old
