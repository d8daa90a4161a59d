"""Issuers, their published keys and the two proof formats applied with an institution's keys.

Every institution is its own issuer (`/issuers/<slug>`) with its own badge keys from
`lti_tool.store.keys` (purposes `badge-ed25519` and `badge-rsa`, per institution); they stay
published after rotation, so verification resolves any key a credential names, old or new, but
only among the keys of the institution the credential names as its issuer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwcrypto import jwk
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.badges import dataintegrity, fastcanon, jsonld, vcjwt
from lti_tool.badges.builder import IssuerFacts, iso
from lti_tool.badges.multibase import ed25519_multikey
from lti_tool.settings import Settings
from lti_tool.store import keys
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import Institution

ED25519 = "badge-ed25519"
RSA = "badge-rsa"
JWT_PURPOSES = {"RS256": RSA, "EdDSA": ED25519}
ISSUERS_PATH = "/issuers/"


def issuer_id(settings: Settings, institution: Institution) -> str:
    return settings.url(f"{ISSUERS_PATH}{institution.slug}")


def issuer_facts(settings: Settings, institution: Institution) -> IssuerFacts:
    """The institution as the issuer Profile, from its row."""
    return IssuerFacts(
        id=issuer_id(settings, institution), name=institution.name, url=institution.url,
        email=institution.email, country=institution.country,
        # the installation's settings fill what the institution row leaves empty
        region=institution.region or settings.issuer_region,
        legal_identifier=institution.legal_identifier or settings.issuer_legal_identifier,
        image_url=settings.issuer_image_url)


def institution_for_issuer(db: Session, settings: Settings, value: object) -> Institution | None:
    """The institution whose issuer id is `value` (a credential's `issuer` or its `id`)."""
    named = value.get("id") if isinstance(value, dict) else value
    prefix = settings.url(ISSUERS_PATH)
    if not isinstance(named, str) or not named.startswith(prefix):
        return None
    slug = named[len(prefix):]
    if not slug or "/" in slug or "#" in slug or len(slug) > 63:
        return None
    return db.scalar(select(Institution).where(Institution.slug == slug))


def jwt_algorithm(settings: Settings) -> str:
    """RS256 unless `badge_jwt_alg = "EdDSA"` is set (RS256 is what every verifier takes)."""
    algorithm = settings.badge_jwt_alg
    return algorithm if algorithm in JWT_PURPOSES else "RS256"


def key_url(settings: Settings, kid: str) -> str:
    return settings.url(f"/keys/{kid}")


_PRIVATE: dict[str, jwk.JWK] = {}


def _private(row, settings: Settings) -> jwk.JWK:
    """The private key of a key row, parsed once per process.

    Parsing validates an RSA key, which costs about 100 ms; a kid never changes its key.
    """
    if row.kid not in _PRIVATE:
        _PRIVATE[row.kid] = keys.private_jwk(row, settings)
    return _PRIVATE[row.kid]


_PUBLIC: dict[str, Ed25519PublicKey] = {}


def _ed25519_public(row) -> Ed25519PublicKey:
    """The public key of a key row, parsed once per process (a kid never changes its key;
    whether the key is still published is asked of the database every time)."""
    if row.kid not in _PUBLIC:
        _PUBLIC[row.kid] = jwk.JWK(**row.public_jwk).get_op_key("verify")
    return _PUBLIC[row.kid]


def published_multikeys(db: Session, settings: Settings, institution: Institution) -> list[str]:
    """`publicKeyMultibase` of every Ed25519 badge key the institution ever used, oldest first."""
    return [ed25519_multikey(_ed25519_public(row))
            for row in keys.published_keys(db, settings, ED25519,
                                           institution_id=institution.id)]


def verification_method(settings: Settings, institution: Institution,
                        public_key: Ed25519PublicKey) -> str:
    return f"{issuer_id(settings, institution)}#{ed25519_multikey(public_key)}"


@dataclass
class Signer:
    """An institution's active keys, loaded once per unit of work (loading a PEM costs more
    than signing)."""

    settings: Settings
    institution: Institution
    ed25519: Ed25519PrivateKey
    method: str
    jwt_key: jwk.JWK
    jwt_kid_url: str

    @classmethod
    def load(cls, db: Session, settings: Settings, institution: Institution) -> Signer:
        ed_row = keys.active_key(db, settings, ED25519, institution_id=institution.id)
        private = _private(ed_row, settings).get_op_key("sign")
        jwt_row = keys.active_key(db, settings, JWT_PURPOSES[jwt_algorithm(settings)],
                                  institution_id=institution.id)
        return cls(settings=settings, institution=institution, ed25519=private,
                   method=verification_method(settings, institution, private.public_key()),
                   jwt_key=_private(jwt_row, settings),
                   jwt_kid_url=key_url(settings, jwt_row.kid))

    @property
    def issuer(self) -> IssuerFacts:
        return issuer_facts(self.settings, self.institution)

    def data_integrity(self, document: dict, created: datetime | None = None) -> dict:
        return dataintegrity.sign(document, self.ed25519, verification_method=self.method,
                                  created=iso(created or utcnow()),
                                  loader=jsonld.loader_for(self.settings.base_url),
                                  canonicalize=fastcanon.canonicalize)

    def jwt(self, document: dict) -> str:
        return vcjwt.sign(document, self.jwt_key, self.jwt_kid_url)


def ed25519_resolver(db: Session, settings: Settings,
                     institution: Institution | None) -> dataintegrity.KeyResolver:
    """Resolve a verificationMethod URL to a key `institution` publishes (any rotation);
    nothing resolves without an institution."""

    def resolve(method: str) -> Ed25519PublicKey | None:
        if institution is None:
            return None
        prefix = issuer_id(settings, institution) + "#"
        if not method.startswith(prefix):
            return None
        wanted = method[len(prefix):]
        for row in keys.published_keys(db, settings, ED25519, institution_id=institution.id):
            public = _ed25519_public(row)
            if ed25519_multikey(public) == wanted:
                return public
        return None

    return resolve


def jwk_resolver(db: Session, settings: Settings,
                 institution: Institution | None) -> vcjwt.JwkResolver:
    """Resolve a `kid` URL to a published badge key of `institution` (none without one)."""
    prefix = settings.url("/keys/")

    def resolve(kid_url: str) -> jwk.JWK | None:
        if institution is None or not kid_url.startswith(prefix):
            return None
        row = keys.find_public_key(db, kid_url[len(prefix):], institution_id=institution.id)
        if row is None or row.purpose not in (RSA, ED25519):
            return None
        return jwk.JWK(**row.public_jwk)

    return resolve
