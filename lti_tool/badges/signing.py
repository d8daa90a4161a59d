"""The issuer, its published keys and the two proof formats applied with the tool's keys.

Badge keys come from `lti_tool.launch.keys` (purposes `badge-ed25519` and `badge-rsa`); they
stay published after rotation, so verification resolves any key a credential names, old or new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwcrypto import jwk
from sqlalchemy.orm import Session

from lti_tool.badges import dataintegrity, jsonld, vcjwt
from lti_tool.badges.builder import IssuerFacts, iso
from lti_tool.badges.multibase import ed25519_multikey
from lti_tool.launch import keys
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow

ED25519 = "badge-ed25519"
RSA = "badge-rsa"
JWT_PURPOSES = {"RS256": RSA, "EdDSA": ED25519}


def issuer_slug(settings: Settings) -> str:
    return settings.issuer_slug


def issuer_facts(settings: Settings) -> IssuerFacts:
    """The institution as the issuer Profile, from settings (one issuer per installation)."""
    return IssuerFacts(
        id=settings.url(f"/issuers/{issuer_slug(settings)}"),
        name=settings.issuer_name, url=settings.issuer_url, email=settings.issuer_email,
        country=settings.issuer_country,
        image_url=settings.issuer_image_url)


def jwt_algorithm(settings: Settings) -> str:
    """RS256 unless `badge_jwt_alg = "EdDSA"` is set (RS256 is what every verifier takes)."""
    algorithm = settings.badge_jwt_alg
    return algorithm if algorithm in JWT_PURPOSES else "RS256"


def key_url(settings: Settings, kid: str) -> str:
    return settings.url(f"/keys/{kid}")


_PRIVATE: dict[str, jwk.JWK] = {}


def _private(row) -> jwk.JWK:
    """The private key of a key row, parsed once per process.

    Parsing validates an RSA key, which costs about 100 ms; a kid never changes its key.
    """
    if row.kid not in _PRIVATE:
        _PRIVATE[row.kid] = keys.private_jwk(row)
    return _PRIVATE[row.kid]


def _ed25519_private(row) -> Ed25519PrivateKey:
    return _private(row).get_op_key("sign")


def _ed25519_public(row) -> Ed25519PublicKey:
    return jwk.JWK(**row.public_jwk).get_op_key("verify")


def published_multikeys(db: Session, settings: Settings) -> list[str]:
    """`publicKeyMultibase` of every Ed25519 badge key ever used, oldest first."""
    return [ed25519_multikey(_ed25519_public(row))
            for row in keys.published_keys(db, settings, ED25519)]


def verification_method(settings: Settings, public_key: Ed25519PublicKey) -> str:
    return f"{issuer_facts(settings).id}#{ed25519_multikey(public_key)}"


@dataclass
class Signer:
    """The active keys, loaded once per unit of work (loading a PEM costs more than signing)."""

    settings: Settings
    ed25519: Ed25519PrivateKey
    method: str
    jwt_key: jwk.JWK
    jwt_kid_url: str

    @classmethod
    def load(cls, db: Session, settings: Settings) -> Signer:
        ed_row = keys.active_key(db, settings, ED25519)
        private = _ed25519_private(ed_row)
        jwt_row = keys.active_key(db, settings, JWT_PURPOSES[jwt_algorithm(settings)])
        return cls(settings=settings, ed25519=private,
                   method=verification_method(settings, private.public_key()),
                   jwt_key=_private(jwt_row),
                   jwt_kid_url=key_url(settings, jwt_row.kid))

    def data_integrity(self, document: dict, created: datetime | None = None) -> dict:
        return dataintegrity.sign(document, self.ed25519, verification_method=self.method,
                                  created=iso(created or utcnow()),
                                  loader=jsonld.loader_for(self.settings.base_url))

    def jwt(self, document: dict) -> str:
        return vcjwt.sign(document, self.jwt_key, self.jwt_kid_url)


def ed25519_resolver(db: Session, settings: Settings) -> dataintegrity.KeyResolver:
    """Resolve a verificationMethod URL to a key this issuer publishes (any rotation)."""
    prefix = issuer_facts(settings).id + "#"

    def resolve(method: str) -> Ed25519PublicKey | None:
        if not method.startswith(prefix):
            return None
        wanted = method[len(prefix):]
        for row in keys.published_keys(db, settings, ED25519):
            public = _ed25519_public(row)
            if ed25519_multikey(public) == wanted:
                return public
        return None

    return resolve


def jwk_resolver(db: Session, settings: Settings) -> vcjwt.JwkResolver:
    """Resolve a `kid` URL to a published badge key of this tool."""
    prefix = settings.url("/keys/")

    def resolve(kid_url: str) -> jwk.JWK | None:
        if not kid_url.startswith(prefix):
            return None
        row = keys.find_public_key(db, kid_url[len(prefix):])
        if row is None or row.purpose not in (RSA, ED25519):
            return None
        return jwk.JWK(**row.public_jwk)

    return resolve
