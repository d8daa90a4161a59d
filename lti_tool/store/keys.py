"""The tool's signing keys: created on first use, published as JWKS, rotated with a grace period.

One table serves every purpose: `lti` (RS256, signs client assertions and deep-linking
responses; the tool's, no institution), and per institution `badge-rsa` (RS256 VC-JWT) and
`badge-ed25519` (EdDSA / eddsa-rdfc-2022): each institution signs its credentials with its own
keys, so no institution's registration can make a credential that verifies as another's. LTI
keys stay published for `key_grace_seconds` after rotation, so tokens signed just before still
verify; badge keys stay published for ever, so credentials signed before a rotation still
verify. Private keys live in 0600 files under `data_dir/keys` or, with `key_storage =
"database"`, in the database sealed with the installation's encryption key (lti_tool.secrets).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path

from jwcrypto import jwk
from sqlalchemy import BindParameter, ColumnElement, or_, select
from sqlalchemy.orm import Session

from lti_tool.secrets import read_secret, seal, unseal, write_secret
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


def _owner(purpose: str, institution_id: int | None) -> int | None:
    """Badge keys need their institution; the LTI key belongs to none."""
    if purpose not in ALGORITHMS:
        raise ValueError(f"unknown key purpose {purpose!r}")
    if purpose in PUBLISHED_FOR_EVER and institution_id is None:
        raise ValueError(f"{purpose} keys belong to an institution: give institution_id")
    return institution_id if purpose in PUBLISHED_FOR_EVER else None


def _of(purpose: str, institution_id: int | None):
    owner = _owner(purpose, institution_id)
    return (ToolKey.purpose == purpose,
            ToolKey.institution_id.is_(None) if owner is None
            else ToolKey.institution_id == owner)


def _create(db: Session, settings: Settings, purpose: str,
            institution_id: int | None = None) -> ToolKey:
    algorithm = ALGORITHMS[purpose]
    key = _generate(algorithm)
    kid = f"{purpose}-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    pem = key.export_to_pem(private_key=True, password=None)
    row = ToolKey(kid=kid, purpose=purpose, algorithm=algorithm,
                  institution_id=_owner(purpose, institution_id),
                  public_jwk=_public_dict(key, kid, algorithm), active=True)
    if settings.key_storage == "database":
        row.private_pem = seal(settings, pem.decode())
    else:
        path = Path(settings.data_dir) / "keys" / f"{kid}.pem"
        write_secret(path, pem)
        row.private_path = str(path.resolve())
    db.add(row)
    db.flush()
    return row


def active_key(db: Session, settings: Settings, purpose: str = "lti", *,
               institution_id: int | None = None) -> ToolKey:
    """The current key for `purpose` (of `institution_id` for badge keys), made on first use."""
    row = db.scalar(
        select(ToolKey).where(*_of(purpose, institution_id), ToolKey.active.is_(True))
        .order_by(ToolKey.id.desc())
    )
    return row or _create(db, settings, purpose, institution_id)


def private_jwk(row: ToolKey, settings: Settings | None = None) -> jwk.JWK:
    """The private key of `row` as a jwcrypto JWK carrying its `kid`. A database-stored key
    is unsealed with `settings`' encryption key."""
    if row.private_pem:
        if settings is None:
            raise ValueError("a database-stored key needs the settings to unseal it")
        pem = (unseal(settings, row.private_pem) or "").encode()
    else:
        pem = read_secret(Path(row.private_path or ""))
    key = jwk.JWK.from_pem(pem)
    key.update(kid=row.kid, alg=row.algorithm, use="sig")
    return key


def signing_jwk(db: Session, settings: Settings, purpose: str = "lti", *,
                institution_id: int | None = None) -> jwk.JWK:
    return private_jwk(active_key(db, settings, purpose, institution_id=institution_id), settings)


def is_published(now: datetime | BindParameter) -> ColumnElement[bool]:
    """The condition that a key row is published at `now` (a moment or a bind): active, or
    retired with no end (badge keys) or an end still ahead."""
    return or_(ToolKey.active.is_(True), ToolKey.publish_until.is_(None),
               ToolKey.publish_until > now)


def published_keys(db: Session, settings: Settings, purpose: str = "lti", *,
                   institution_id: int | None = None) -> list[ToolKey]:
    """Active key plus retired keys still inside their publication window."""
    active_key(db, settings, purpose, institution_id=institution_id)
    return list(db.scalars(
        select(ToolKey).where(*_of(purpose, institution_id), is_published(utcnow()))
        .order_by(ToolKey.id)
    ))


def public_jwks(db: Session, settings: Settings, purpose: str = "lti", *,
                institution_id: int | None = None) -> dict:
    return {"keys": [dict(row.public_jwk) for row in
                     published_keys(db, settings, purpose, institution_id=institution_id)]}


def find_public_key(db: Session, kid: str, *, institution_id: int | None = None) -> ToolKey | None:
    """Any key ever used, by kid (verification of old credentials needs retired keys); with
    `institution_id`, only that institution's badge keys."""
    query = select(ToolKey).where(ToolKey.kid == kid)
    if institution_id is not None:
        query = query.where(ToolKey.institution_id == institution_id)
    return db.scalar(query)


def rotate(db: Session, settings: Settings, purpose: str = "lti", *,
           institution_id: int | None = None) -> tuple[ToolKey, ToolKey | None]:
    """Make a new active key; the old one stays published (LTI: for the grace period)."""
    old = db.scalar(
        select(ToolKey).where(*_of(purpose, institution_id), ToolKey.active.is_(True))
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
    return _create(db, settings, purpose, institution_id), old
