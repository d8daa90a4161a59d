"""Issuers, their published keys and the two proof formats applied with an institution's keys.

Every institution is its own issuer (`/issuers/<slug>`) with its own badge keys from
`lti_tool.store.keys` (purposes `badge-ed25519` and `badge-rsa`, per institution); they stay
published after rotation, so verification resolves any key a credential names, old or new, but
only among the keys of the institution the credential names as its issuer.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwcrypto import jwk
from sqlalchemy import ColumnElement, and_, bindparam, exists, select
from sqlalchemy.orm import Session

from lti_tool.badges import dataintegrity, fastcanon, jsonld, vcjwt
from lti_tool.badges.builder import IssuerFacts, iso
from lti_tool.badges.multibase import ed25519_multikey
from lti_tool.settings import Settings
from lti_tool.store import keys
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import Institution, ToolKey

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


@dataclass(frozen=True)
class ParsedKey:
    """A badge key's private half, parsed: the JWK, the cryptography key that signs, and for
    Ed25519 its `publicKeyMultibase`."""

    kid: str
    algorithm: str
    jwk: jwk.JWK
    signing_key: Any
    multikey: str


_PARSED: dict[tuple[str, str], ParsedKey] = {}
_PARSED_LOCK = threading.Lock()


def key_version(row) -> str:
    """What identifies the stored private material of a key row, cheap enough to ask each
    time: the digest of the (sealed) PEM in the database, or the key file's identity (device,
    inode, size, modification time and mode, so a replaced or re-permissioned file is read
    again, and refused again if others can read it)."""
    if row.private_pem:
        return "db:" + hashlib.sha256(row.private_pem.encode()).hexdigest()
    try:
        info = os.stat(row.private_path or "")
    except OSError:
        return "file:absent"  # parsing then fails as it always did, and nothing is cached
    return (f"file:{row.private_path}:{info.st_dev}:{info.st_ino}:{info.st_size}:"
            f"{info.st_mtime_ns}:{info.st_mode}")


def parsed_key(row, settings: Settings) -> ParsedKey:
    """The parsed private key of a key row, cached per process by kid and `key_version`.

    Parsing (unsealing, PEM, validating an RSA key) costs far more than signing, so it is done
    once per key version; which key is active is asked of the database on every load, so a
    rotation takes effect at the next issuance, and a changed stored key at its next use.
    """
    cache_key = (row.kid, key_version(row))
    hit = _PARSED.get(cache_key)
    if hit is not None:
        return hit
    private = keys.private_jwk(row, settings)
    signing_key = private.get_op_key("sign")
    multikey = ed25519_multikey(signing_key.public_key()) if row.algorithm == "EdDSA" else ""
    hit = ParsedKey(kid=row.kid, algorithm=row.algorithm, jwk=private,
                    signing_key=signing_key, multikey=multikey)
    with _PARSED_LOCK:
        for stale in [key for key in _PARSED if key[0] == row.kid]:
            del _PARSED[stale]  # an older version of the same kid
        _PARSED[cache_key] = hit
    return hit


@dataclass(frozen=True)
class PublicKey:
    """A badge key's public half, parsed: the stored JWK it was parsed from (to tell whether a
    row still holds it), the jwcrypto JWK a VC-JWT verifies with and, for Ed25519, the key a
    proof verifies with and its `publicKeyMultibase`."""

    kid: str
    stored: dict
    jwk: jwk.JWK
    ed25519: Ed25519PublicKey | None
    multikey: str


_PUBLIC: dict[str, PublicKey] = {}


def public_key(row) -> PublicKey:
    """The public key of a key row, parsed once per process (per kid and stored JWK)."""
    hit = _PUBLIC.get(row.kid)
    if hit is not None and hit.stored == row.public_jwk:
        return hit
    public = jwk.JWK(**row.public_jwk)
    ed25519 = public.get_op_key("verify") if row.algorithm == "EdDSA" else None
    hit = PublicKey(kid=row.kid, stored=dict(row.public_jwk), jwk=public, ed25519=ed25519,
                    multikey=ed25519_multikey(ed25519) if ed25519 is not None else "")
    _PUBLIC[row.kid] = hit
    return hit


def published_multikeys(db: Session, settings: Settings, institution: Institution) -> list[str]:
    """`publicKeyMultibase` of every Ed25519 badge key the institution ever used, oldest first."""
    return [public_key(row).multikey
            for row in keys.published_keys(db, settings, ED25519,
                                           institution_id=institution.id)]


# The keys verification found, per (database, institution, multikey or kid): only keys found,
# and each hit is confirmed by one query of its row (`_holds`), so a key that is withdrawn,
# deleted, moved or changed is refused by the next verification in any process, as the full
# read refuses it; a key made since (a rotation) is a miss, which reads the keys again.
_BY_METHOD: dict[tuple[Any, int, str], PublicKey] = {}
_BY_KID: dict[tuple[Any, int, str], PublicKey] = {}

# The row of a cached key, as published_keys(ED25519) / find_public_key (a badge key) find it.
_PUBLISHED_ROW = select(ToolKey.public_jwk).where(
    ToolKey.kid == bindparam("kid"), ToolKey.institution_id == bindparam("institution"),
    ToolKey.purpose == ED25519, keys.is_published(bindparam("now")))
_BADGE_KEY_ROW = select(ToolKey.public_jwk).where(
    ToolKey.kid == bindparam("kid"), ToolKey.institution_id == bindparam("institution"),
    ToolKey.purpose.in_([RSA, ED25519]))


def _holds(db: Session, statement: Any, key: PublicKey, **params: Any) -> bool:
    """Whether the row that `statement` finds for `key`'s kid still stores that key. Sent on
    the session's connection (a third of the cost of an ORM execution on psycopg), after the
    autoflush an ORM query would do, so a change made in this session counts too."""
    if db.autoflush:
        db.flush()
    found = db.connection().execute(statement, {"kid": key.kid, **params}).scalar()
    return found == key.stored


def published_ed25519(db: Session, settings: Settings, institution_id: int,
                      multikey: str) -> PublicKey | None:
    """The Ed25519 key the institution publishes (any rotation) under `multikey`, if any:
    one light query on a hit of the per-process cache, the institution's keys read on a miss
    (as before the cache: published_keys, which makes the first key on first use)."""
    cache_key = (db.get_bind().engine.url, institution_id, multikey)
    hit = _BY_METHOD.get(cache_key)
    if hit is not None and _holds(db, _PUBLISHED_ROW, hit, institution=institution_id,
                                  now=utcnow()):
        return hit
    _BY_METHOD.pop(cache_key, None)
    for row in keys.published_keys(db, settings, ED25519, institution_id=institution_id):
        found = public_key(row)
        if found.multikey == multikey:
            _BY_METHOD[cache_key] = found
            return found
    return None


def badge_key(db: Session, institution_id: int, kid: str) -> PublicKey | None:
    """The institution's badge key (RSA or Ed25519, current or retired) named `kid`, if any:
    one light query on a hit of the per-process cache, find_public_key on a miss."""
    cache_key = (db.get_bind().engine.url, institution_id, kid)
    hit = _BY_KID.get(cache_key)
    if hit is not None and _holds(db, _BADGE_KEY_ROW, hit, institution=institution_id):
        return hit
    _BY_KID.pop(cache_key, None)
    row = keys.find_public_key(db, kid, institution_id=institution_id)
    if row is None or row.purpose not in (RSA, ED25519):
        return None
    found = _BY_KID[cache_key] = public_key(row)
    return found


def verification_method(settings: Settings, institution: Institution,
                        public_key: Ed25519PublicKey) -> str:
    return f"{issuer_id(settings, institution)}#{ed25519_multikey(public_key)}"


_ACTIVE_KEYS = (
    select(ToolKey.id, ToolKey.kid, ToolKey.purpose, ToolKey.algorithm, ToolKey.private_pem,
           ToolKey.private_path)
    .where(ToolKey.institution_id == bindparam("institution"),
           ToolKey.purpose.in_([bindparam("ed25519"), bindparam("jwt")]),
           ToolKey.active.is_(True))
    .order_by(ToolKey.id.desc()))


@dataclass(frozen=True)
class KeyRow:
    """The columns of an active key row that locate its private half (what `_ACTIVE_KEYS`
    reads), held apart from any session."""

    id: int
    kid: str
    purpose: str
    algorithm: str
    private_pem: str | None
    private_path: str | None


def active_keys(db: Session, settings: Settings, institution: Institution,
                jwt_purpose: str) -> dict[str, KeyRow]:
    """The active Ed25519 key row and that of `jwt_purpose` for `institution`, in one query
    (the columns that locate the private key; a purpose without a key gets one made, as on
    first use)."""
    purposes = tuple(dict.fromkeys((ED25519, jwt_purpose)))
    rows = db.execute(_ACTIVE_KEYS, {"institution": institution.id, "ed25519": ED25519,
                                     "jwt": jwt_purpose}).all()
    newest: dict[str, Any] = {}
    for row in rows:
        newest.setdefault(row.purpose, row)
    for purpose in purposes:
        if purpose not in newest:
            newest[purpose] = keys.active_key(db, settings, purpose,
                                              institution_id=institution.id)
    return {purpose: KeyRow(id=row.id, kid=row.kid, purpose=row.purpose,
                            algorithm=row.algorithm, private_pem=row.private_pem,
                            private_path=row.private_path)
            for purpose, row in newest.items()}


# The active key rows issuance last read, per (database, institution, VC-JWT purpose): the
# insert that stores a credential checks that they are still the active ones (`still_active`)
# and stores nothing otherwise; issuance then forgets them and reads them again.
_ACTIVE_ROWS: dict[tuple[Any, int, str], dict[str, KeyRow]] = {}


def forget_active(db: Session, institution_id: int) -> None:
    """Drop the cached active key rows of the institution (the insert found them stale)."""
    url = db.get_bind().engine.url
    for stale in [key for key in _ACTIVE_ROWS if key[:2] == (url, institution_id)]:
        _ACTIVE_ROWS.pop(stale, None)


def still_active(name: str) -> ColumnElement[bool]:
    """SQL for the insert that stores what a `Signer.cached` signed: the key row bound as
    `:{name}_id` (and `_kid`, `_purpose`, ... : each KeyRow field, `Signer.key_binds`) is,
    unchanged, the newest active key of its purpose of `:institution_id`: the one
    `active_keys` would read now."""
    key = ToolKey.__table__.alias(f"{name}_key")
    newer = ToolKey.__table__.alias(f"{name}_newer")
    return and_(
        exists().where(key.c.id == bindparam(f"{name}_id"),
                       key.c.kid == bindparam(f"{name}_kid"),
                       key.c.institution_id == bindparam("institution_id"),
                       key.c.purpose == bindparam(f"{name}_purpose"),
                       key.c.algorithm == bindparam(f"{name}_algorithm"),
                       key.c.active.is_(True),
                       key.c.private_pem.is_not_distinct_from(bindparam(f"{name}_private_pem")),
                       key.c.private_path.is_not_distinct_from(
                           bindparam(f"{name}_private_path"))),
        ~exists().where(newer.c.institution_id == bindparam("institution_id"),
                        newer.c.purpose == bindparam(f"{name}_purpose"),
                        newer.c.active.is_(True), newer.c.id > bindparam(f"{name}_id")))


@dataclass
class Signer:
    """An institution's active keys: `load` reads both purposes in one query, `cached` (for
    issuance) reuses the rows last read; the parsed keys come from the per-process cache
    (`parsed_key`)."""

    settings: Settings
    institution: Institution
    ed25519: Ed25519PrivateKey
    method: str
    jwt_key: jwk.JWK
    jwt_kid_url: str
    jwt_signing_key: Any = None
    jwt_alg: str = ""
    rows: tuple[KeyRow, KeyRow] | None = None  # the Ed25519 and VC-JWT key rows

    @classmethod
    def load(cls, db: Session, settings: Settings, institution: Institution) -> Signer:
        jwt_purpose = JWT_PURPOSES[jwt_algorithm(settings)]
        return cls._of(settings, institution,
                       active_keys(db, settings, institution, jwt_purpose), jwt_purpose)

    @classmethod
    def cached(cls, db: Session, settings: Settings, institution: Institution) -> Signer:
        """As `load`, from the active key rows this process read last for the institution
        (no query): only for what is stored by a statement that checks `still_active`."""
        jwt_purpose = JWT_PURPOSES[jwt_algorithm(settings)]
        cache_key = (db.get_bind().engine.url, institution.id, jwt_purpose)
        rows = _ACTIVE_ROWS.get(cache_key)
        if rows is None:
            rows = _ACTIVE_ROWS[cache_key] = active_keys(db, settings, institution,
                                                         jwt_purpose)
        return cls._of(settings, institution, rows, jwt_purpose)

    @classmethod
    def _of(cls, settings: Settings, institution: Institution, rows: dict[str, KeyRow],
            jwt_purpose: str) -> Signer:
        ed = parsed_key(rows[ED25519], settings)  # the key version is checked every time
        jwt_key = parsed_key(rows[jwt_purpose], settings)
        return cls(settings=settings, institution=institution, ed25519=ed.signing_key,
                   method=f"{issuer_id(settings, institution)}#{ed.multikey}",
                   jwt_key=jwt_key.jwk, jwt_kid_url=key_url(settings, jwt_key.kid),
                   jwt_signing_key=jwt_key.signing_key, jwt_alg=jwt_key.algorithm,
                   rows=(rows[ED25519], rows[jwt_purpose]))

    def key_binds(self) -> dict[str, Any]:
        """The binds of `still_active("ed")` and `still_active("jwt")` for this signer's keys."""
        if self.rows is None:
            raise ValueError("a Signer made by hand has no key rows to check")
        return {f"{name}_{field}": value
                for name, row in zip(("ed", "jwt"), self.rows, strict=True)
                for field, value in vars(row).items()}

    @property
    def issuer(self) -> IssuerFacts:
        return issuer_facts(self.settings, self.institution)

    def data_integrity(self, document: dict, created: datetime | None = None) -> dict:
        return dataintegrity.sign(document, self.ed25519, verification_method=self.method,
                                  created=iso(created or utcnow()),
                                  loader=jsonld.loader_for(self.settings.base_url),
                                  canonicalize=fastcanon.canonicalize)

    def jwt(self, document: dict) -> str:
        """The VC-JWT of `document`: the direct compact JWS (byte for byte what jwcrypto
        makes, see vcjwt.sign_with) when the key is parsed here, else through jwcrypto."""
        if self.jwt_signing_key is not None and self.jwt_alg in vcjwt.DIRECT_ALGORITHMS:
            return vcjwt.sign_with(document, self.jwt_signing_key, self.jwt_alg,
                                   self.jwt_kid_url)
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
        found = published_ed25519(db, settings, institution.id, method[len(prefix):])
        return found.ed25519 if found is not None else None

    return resolve


def jwk_resolver(db: Session, settings: Settings,
                 institution: Institution | None) -> vcjwt.JwkResolver:
    """Resolve a `kid` URL to a published badge key of `institution` (none without one)."""
    prefix = settings.url("/keys/")

    def resolve(kid_url: str) -> jwk.JWK | None:
        if institution is None or not kid_url.startswith(prefix):
            return None
        found = badge_key(db, institution.id, kid_url[len(prefix):])
        return found.jwk if found is not None else None

    return resolve
