"""Everything a launch id_token must pass before the tool believes a word of it.

The checks run in this order, each failing with a `LaunchError` that names the problem and
none of them writing to the database:

1. size (413) and shape: three base64url parts, JSON objects without repeated members;
2. header: `alg` only RS256/RS384/RS512 (never `none` or HMAC), optional `kid`, no `crit`;
3. registration: `iss` known, `aud` (string or list) holding a registered client_id, `azp` equal
   to it when several audiences are present (or whenever it is sent); pylti1p3
   (`toolconf.ClaimsLaunch` over the database-backed `DbToolConf`) then finds the registration
   for (iss, client_id);
4. key: `kid` in the registration's static key set or its JWKS URL (cached, refetched once on an
   unknown kid); an RSA signing key of at least 2048 bits whose own `alg` agrees;
5. signature (jwcrypto);
6. time: `exp`, `iat`, `nbf` with `settings.jwt_leeway_seconds` of skew;
7. message: version 1.3.0, message type, `sub`, `nonce`, `deployment_id`, roles, context,
   resource link or deep-linking settings, each of the right JSON type and a storable length;
   then pylti1p3 checks the deployment (registered and enabled, or new and accepted by the
   registration) and the message with its own validators.

State and nonce single use are checked by `flow`, which owns the transaction, and records a
new deployment of a registration that accepts them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from cryptography.exceptions import InvalidSignature
from jwcrypto import jwk
from jwcrypto.common import JWException, base64url_decode
from jwcrypto.jwa import JWA
from pylti1p3.exception import LtiException
from sqlalchemy.orm import Session

from lti_tool.errors import LaunchError, PayloadTooLarge
from lti_tool.launch import claims as c
from lti_tool.launch.jwks_cache import JwksCache, find_key
from lti_tool.launch.platforms import (
    LaunchCandidate,
    find_deployment,
    launch_candidates,
    require_active,
)
from lti_tool.launch.toolconf import ClaimsLaunch, DbToolConf
from lti_tool.outbound import host_key, summary, url_on_hosts
from lti_tool.settings import Settings
from lti_tool.store.models.core import Deployment, Platform

log = logging.getLogger(__name__)

ALLOWED_ALGS = ("RS256", "RS384", "RS512")
MIN_RSA_BITS = 2048
ID_MAX = 255  # the width of the id columns (sub, context id, resource link id, deployment id)
URL_MAX = 1000


@dataclass(frozen=True)
class VerifiedLaunch:
    """An id_token whose signature, registration, times and claim shapes have been checked."""

    platform: Platform
    header: dict
    claims: dict
    # the deployment row the checks read (None: not registered yet, or not looked up), so the
    # launch's writes need not read it again
    deployment: Deployment | None = None
    # whether the registration had already used the nonce when the checks read it (None: not
    # looked up); the UsedNonce row's unique key decides in the end
    nonce_used: bool | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return self.claims.get(name, default)

    def obj(self, name: str) -> dict:
        """A claim that is a JSON object (already type-checked), or {} when absent."""
        value = self.claims.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def message_type(self) -> str:
        return self.claims[c.MESSAGE_TYPE]

    @property
    def nonce(self) -> str:
        return self.claims["nonce"]

    @property
    def sub(self) -> str:
        return self.claims["sub"]

    @property
    def deployment_id(self) -> str:
        return self.claims[c.DEPLOYMENT_ID]

    @property
    def roles(self) -> list[str]:
        return list(self.claims.get(c.ROLES) or [])

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.claims["exp"], UTC)


def _finite(text: str) -> float:
    """JSON numbers only: no NaN or Infinity (Python accepts them, PostgreSQL JSON does not)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text[:20]}")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


class _RepeatedMember(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose member names are unique: a repeated `sub` or `aud` could be read
    differently by another parser (RFC 7519 section 4), so such a token is refused."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _RepeatedMember(name)
            seen.add(name)
    return value


def _b64json(part: str, what: str) -> tuple[dict, bytes]:
    """The JSON object a base64url part encodes, and its JSON text."""
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw, parse_float=_finite, parse_constant=_no_constant,
                           object_pairs_hook=_unique_members)
    except _RepeatedMember as exc:
        raise LaunchError(f"Malformed id_token: its {what} repeats the member "
                          f"{str(exc)[:100]!r}.") from exc
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise LaunchError(f"Malformed id_token: its {what} is not base64url-encoded JSON.") from exc
    if not isinstance(value, dict):
        raise LaunchError(f"Malformed id_token: its {what} is not a JSON object.")
    return value, raw


def may_hold_nul(raw: bytes) -> bool:
    """False only when no string parsed from the JSON text `raw` can hold U+0000, so the walk
    of `contains_nul` can be skipped: in UTF-8 JSON a NUL in a string (or a member name) can
    only be the escape \\u0000, as the parser refuses a raw control character in a string.
    UTF-16 and UTF-32 texts, which the parser also reads, are always walked."""
    return json.detect_encoding(raw) not in ("utf-8", "utf-8-sig") or b"\\u0000" in raw


def contains_nul(value: object) -> bool:
    """Whether any string in a JSON value holds U+0000, which PostgreSQL text cannot store."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def parse_token(id_token: str, max_bytes: int) -> tuple[dict, dict]:
    """Header and claims of a compact JWS, refusing oversize and malformed tokens."""
    if len(id_token.encode("utf-8", "surrogatepass")) > max_bytes:
        raise PayloadTooLarge(f"The id_token is larger than {max_bytes} bytes.")
    parts = id_token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise LaunchError("Malformed id_token: a signed JWT has three dot-separated parts "
                          f"(header, payload, signature); this one has {len(parts)}.")
    header, _ = _b64json(parts[0], "header")
    claims, text = _b64json(parts[1], "payload")
    if may_hold_nul(text) and contains_nul(claims):
        raise LaunchError("Malformed id_token: its payload contains NUL characters.")
    alg = header.get("alg")
    if alg not in ALLOWED_ALGS:
        raise LaunchError(f"id_token alg {alg!r} is not accepted: only "
                          f"{', '.join(ALLOWED_ALGS)} signatures are (never none or HMAC).")
    if not parts[2]:
        raise LaunchError("Malformed id_token: it has no signature.")
    if "crit" in header:
        raise LaunchError("id_token header names critical extensions (crit) this tool does not "
                          "understand.")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 200):
        raise LaunchError("id_token header kid must be a non-empty string.")
    return header, claims


def _string(value: object, name: str, *, max_len: int = ID_MAX) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LaunchError(f"The id_token claim {name} is missing or not a non-empty string.")
    if len(value) > max_len:
        raise LaunchError(f"The id_token claim {name} is longer than {max_len} characters.")
    return value


def _object(claims: dict, name: str, *, required: bool) -> dict | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise LaunchError(f"The id_token has no {name} claim.")
        return None
    if not isinstance(value, dict):
        raise LaunchError(f"The id_token claim {name} must be a JSON object.")
    return value


def _url(value: object, name: str) -> str:
    text = _string(value, name, max_len=URL_MAX)
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LaunchError(f"The id_token claim {name} is not an http(s) URL: {text[:200]!r}.")
    return text


def _text_claim(claims: dict, name: str) -> str:
    """A claim to look up before its type is checked: a string, or "" (which matches no row;
    `check_message` refuses the token later)."""
    value = claims.get(name)
    return value if isinstance(value, str) else ""


def select_registration(db: Session, claims: dict) -> LaunchCandidate:
    """The registration the token is for: its issuer's client_id among `aud`, named by `azp`;
    read with its row for the token's deployment_id and whether it used the token's nonce."""
    iss = _string(claims.get("iss"), "iss", max_len=500)
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not audiences or not all(
        isinstance(a, str) and a for a in audiences
    ):
        raise LaunchError("The id_token aud must be a client_id string or a list of them.")
    registered = {candidate.platform.client_id: candidate for candidate in launch_candidates(
        db, iss, _text_claim(claims, c.DEPLOYMENT_ID), _text_claim(claims, "nonce"))}
    if not registered:
        raise LaunchError(f"Unknown issuer {iss!r}: no platform registration has this issuer.")
    azp = claims.get("azp")
    if azp is not None and not isinstance(azp, str):
        raise LaunchError("The id_token azp must be a string.")
    if len(audiences) > 1:
        if not azp:
            raise LaunchError(f"The id_token names several audiences {audiences!r} but no azp.")
        if azp not in audiences:
            raise LaunchError(f"The id_token azp {azp!r} is not one of its audiences.")
        if azp not in registered:
            raise LaunchError(f"The id_token azp {azp!r} is not a client_id registered for {iss}.")
        return registered[azp]
    client_id = audiences[0]
    if client_id not in registered:
        raise LaunchError(
            f"The id_token aud {client_id!r} is not a client_id registered for {iss}. "
            "Moodle sends an activity's legacy 'consumer key' as aud when that field is set: "
            "clear it in the activity (or tool) settings."
        )
    if azp is not None and azp != client_id:
        raise LaunchError(f"The id_token azp {azp!r} does not match its aud {client_id!r}.")
    return registered[client_id]


def platform_key(platform: Platform, kid: str | None, cache: JwksCache) -> dict:
    """The platform's public JWK for `kid`: its static key set first, then its JWKS URL."""
    found = find_key(platform.key_set, kid) if isinstance(platform.key_set, dict) else None
    if found is None and platform.key_set_url:
        found = cache.key(platform.key_set_url, kid)
    if found is None:
        where = platform.key_set_url or "the registration's static key set"
        if kid is None:
            raise LaunchError(f"The id_token header has no kid and {where} does not hold "
                              "exactly one RSA key to use instead.")
        raise LaunchError(f"Unknown kid {kid!r}: {where} has no key with that id.")
    return found


def _rekeyed(platform: Platform, kid: str | None, used: dict, cache: JwksCache) -> dict | None:
    """A different key now published under `kid` at the registration's JWKS URL (the
    platform re-keyed under the same kid), or None. Static key sets are never refetched."""
    static = find_key(platform.key_set, kid) if isinstance(platform.key_set, dict) else None
    if static is not None or not platform.key_set_url:
        return None
    fresh = cache.refresh_after_failure(platform.key_set_url, kid)
    return fresh if fresh is not None and fresh != used else None


def _verifying_key(jwk_dict: dict, alg: str) -> jwk.JWK:
    """The platform key as a jwcrypto key, checked once per distinct key and algorithm (a key
    set changes rarely; parsing a 2048-bit modulus on every launch is waste)."""
    return _checked_key(json.dumps(jwk_dict, sort_keys=True), alg)


@functools.lru_cache(maxsize=256)
def _checked_key(jwk_json: str, alg: str) -> jwk.JWK:
    jwk_dict = json.loads(jwk_json)
    kid = jwk_dict.get("kid")
    if jwk_dict.get("kty") != "RSA":
        raise LaunchError(f"Platform key {kid!r} is not an RSA key; {alg} needs one.")
    if jwk_dict.get("alg") not in (None, alg):
        raise LaunchError(f"Platform key {kid!r} is for {jwk_dict['alg']}, the id_token "
                          f"says {alg}.")
    if jwk_dict.get("use") not in (None, "sig"):
        raise LaunchError(f"Platform key {kid!r} is not a signing key (use={jwk_dict['use']!r}).")
    try:
        key = jwk.JWK(**{k: v for k, v in jwk_dict.items() if k != "d"})
        bits = key.get_op_key("verify").key_size
    except (JWException, ValueError, TypeError) as exc:
        raise LaunchError(f"Platform key {kid!r} is malformed.") from exc
    if bits < MIN_RSA_BITS:
        raise LaunchError(f"Platform key {kid!r} has {bits} bits; at least {MIN_RSA_BITS} "
                          "are required.")
    return key


def verify_signature(id_token: str, alg: str, key: jwk.JWK) -> None:
    """The signature over the token's own first two parts, with jwcrypto's algorithm (its JWS
    object would parse the token once more, already parsed and checked by `parse_token`)."""
    if alg not in ALLOWED_ALGS:
        raise LaunchError(f"The id_token alg {alg!r} is not allowed.")
    signing_input, _, signature = id_token.rpartition(".")
    try:
        JWA.signing_alg(alg).verify(key, signing_input.encode("ascii"),
                                    base64url_decode(signature))
    except (InvalidSignature, JWException, ValueError, TypeError) as exc:
        raise LaunchError("The id_token signature does not verify with the platform's key "
                          f"{key.get('kid')!r}.") from exc


def _instant(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


def _numeric(claims: dict, name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        0 <= value < 1e11
    ):
        raise LaunchError(f"The id_token claim {name} is missing or not a NumericDate.")
    return float(value)


def check_times(claims: dict, leeway: int, now: float) -> None:
    exp = _numeric(claims, "exp", required=True)
    iat = _numeric(claims, "iat", required=True)
    nbf = _numeric(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    if exp <= now - leeway:
        raise LaunchError(f"The id_token expired at {_instant(exp)} (now {_instant(now)}, "
                          f"{leeway} s of clock skew allowed).")
    if iat > now + leeway:
        raise LaunchError(f"The id_token was issued in the future ({_instant(iat)}; now "
                          f"{_instant(now)}): check the LMS clock.")
    if nbf is not None and nbf > now + leeway:
        raise LaunchError(f"The id_token is not valid before {_instant(nbf)}.")


def check_message(claims: dict) -> None:
    """Version, message type and the claims this tool needs, each of the right type."""
    version = claims.get(c.VERSION)
    if version != c.LTI_VERSION:
        raise LaunchError(f"Unsupported LTI version {version!r}: this tool speaks 1.3.0.")
    message_type = claims.get(c.MESSAGE_TYPE)
    if message_type not in c.MESSAGE_TYPES:
        raise LaunchError(f"Unsupported message type {message_type!r}: this tool accepts "
                          f"{' and '.join(c.MESSAGE_TYPES)}.")
    if claims.get("sub") is None:
        raise LaunchError("This is an anonymous launch: the id_token has no sub claim. The "
                          "micro-credentials tool records evidence and issues credentials to a "
                          "known person, so the LMS must send the user's identity.")
    _string(claims.get("sub"), "sub")
    _string(claims.get("nonce"), "nonce")
    _string(claims.get(c.DEPLOYMENT_ID), c.DEPLOYMENT_ID)
    roles = claims.get(c.ROLES)
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise LaunchError(f"The id_token claim {c.ROLES} must be a list of strings.")
    context = _object(claims, c.CONTEXT, required=True)
    assert context is not None
    _string(context.get("id"), c.CONTEXT + ".id")
    if claims.get(c.TARGET_LINK_URI) is not None:
        _url(claims[c.TARGET_LINK_URI], c.TARGET_LINK_URI)
    for name in (c.CUSTOM, c.LAUNCH_PRESENTATION, c.LIS, c.AGS_ENDPOINT, c.NRPS):
        _object(claims, name, required=False)
    ags = claims.get(c.AGS_ENDPOINT) or {}
    for key in ("lineitems", "lineitem"):
        if ags.get(key) is not None:
            _url(ags[key], f"{c.AGS_ENDPOINT}.{key}")
    if ags.get("scope") is not None and not (
        isinstance(ags["scope"], list) and all(isinstance(s, str) for s in ags["scope"])
    ):
        raise LaunchError(f"The id_token claim {c.AGS_ENDPOINT}.scope must be a list of strings.")
    nrps = claims.get(c.NRPS) or {}
    if nrps.get("context_memberships_url") is not None:
        _url(nrps["context_memberships_url"], f"{c.NRPS}.context_memberships_url")
    if message_type == c.RESOURCE_LINK_REQUEST:
        link = _object(claims, c.RESOURCE_LINK, required=True)
        assert link is not None
        _string(link.get("id"), c.RESOURCE_LINK + ".id")
    else:
        settings = _object(claims, c.DL_SETTINGS, required=True)
        assert settings is not None
        _url(settings.get("deep_link_return_url"), c.DL_SETTINGS + ".deep_link_return_url")
        accept = settings.get("accept_types")
        if not isinstance(accept, list) or "ltiResourceLink" not in accept:
            raise LaunchError("The deep-linking request does not accept ltiResourceLink items, "
                              "the only kind this tool places.")


def check_claim_hosts(claims: dict, platform: Platform) -> None:
    """Service URLs in the claims must be on the registration's recorded hosts: the tool sends
    its bearer tokens there, so a launch must not be able to point them anywhere else."""
    hosts = platform.allowed_hosts
    ags = claims.get(c.AGS_ENDPOINT) or {}
    named = [(f"{c.AGS_ENDPOINT}.{key}", ags.get(key)) for key in ("lineitems", "lineitem")]
    nrps = claims.get(c.NRPS) or {}
    named.append((f"{c.NRPS}.context_memberships_url", nrps.get("context_memberships_url")))
    for name, url in named:
        if url is not None and not url_on_hosts(url, hosts):
            log.warning("launch refused: claim %s names %s, not a host of platform %s (%s)",
                        name, summary(url), platform.id, ", ".join(hosts))
            raise LaunchError(
                f"The launch claim {name} names the host {host_key(url)}, which is not one of "
                f"the hosts recorded for this registration ({', '.join(hosts)}). Nothing was "
                "stored. If the LMS really serves it from there, the operator adds it with "
                "`lti-tool platform add --lms-host`.",
                details={"claim": name})


def pylti1p3_registration(message: ClaimsLaunch) -> Platform:
    """The registration pylti1p3 finds through `DbToolConf` for (iss, client_id)."""
    try:
        message.validate_registration()
    except LtiException as exc:
        raise LaunchError(f"No registration for this launch: {exc}") from exc
    return message.registration.platform


def pylti1p3_deployment_and_message(db: Session, message: ClaimsLaunch,
                                    platform: Platform) -> None:
    """pylti1p3's deployment and message checks, run on claims whose types are known."""
    deployment_id = message.get_launch_data()[c.DEPLOYMENT_ID]
    try:
        message.validate_deployment()
    except LtiException as exc:
        row = find_deployment(db, platform, deployment_id)
        if row is not None and not row.enabled:
            raise LaunchError(f"Deployment {deployment_id!r} has been disabled by the "
                              "Office.") from exc
        raise LaunchError(
            f"Deployment {deployment_id!r} is not registered for client_id "
            f"{platform.client_id!r} of {platform.issuer}. Ask the Micro-credentials Office "
            "to add it."
        ) from exc
    try:
        message.validate_message()
    except LtiException as exc:
        raise LaunchError(f"The launch message is incomplete: {exc}.") from exc


def verify_id_token(db: Session, settings: Settings, id_token: str, cache: JwksCache,
                    now: float | None = None) -> VerifiedLaunch:
    """Run checks 1-7 on `id_token`; no database writes."""
    header, claims = parse_token(id_token, settings.max_id_token_bytes)
    candidate = select_registration(db, claims)
    registration = candidate.platform
    tool_conf = DbToolConf(db, settings)
    # pylti1p3's registration and deployment lookups read no row again
    tool_conf.remember(registration, {_text_claim(claims, c.DEPLOYMENT_ID): candidate.deployment})
    message = ClaimsLaunch(tool_conf, claims, registration.client_id)
    platform = pylti1p3_registration(message)
    require_active(platform)  # before any call to a pending registrant's key set
    kid = header.get("kid")
    found = platform_key(platform, kid, cache)
    try:
        verify_signature(id_token, header["alg"], _verifying_key(found, header["alg"]))
    except LaunchError:
        fresh = _rekeyed(platform, kid, found, cache)
        if fresh is None:
            raise
        verify_signature(id_token, header["alg"], _verifying_key(fresh, header["alg"]))
    check_times(claims, settings.jwt_leeway_seconds, time.time() if now is None else now)
    check_message(claims)
    check_claim_hosts(claims, platform)
    pylti1p3_deployment_and_message(db, message, platform)
    return VerifiedLaunch(platform=platform, header=header, claims=claims,
                          deployment=tool_conf.deployment_rows.get(
                              (platform.id, claims[c.DEPLOYMENT_ID])),
                          nonce_used=candidate.nonce_used if platform is registration else None)
