"""VC-JWT as Open Badges 3.0 section 8.2 defines it (jwcrypto).

The payload IS the credential JSON plus the registered claims `iss`, `jti`, `nbf`, `sub` (and
`exp` when the credential has `validUntil`); the JOSE header carries only `alg`, `kid` (a URL
that dereferences to the public JWK) and `typ` = JWT.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_decode, json_decode

ALLOWED_HEADER = {"alg", "kid", "typ", "jwk"}
ALGORITHMS = ("RS256", "EdDSA", "ES256")
DIRECT_ALGORITHMS = ("RS256", "EdDSA")  # deterministic signatures `sign_with` makes itself
REGISTERED_CLAIMS = ("iss", "jti", "nbf", "sub", "exp")

JwkResolver = Callable[[str], jwk.JWK | None]


class JwtError(Exception):
    """The token is malformed, signed by an unknown key, or breaks the OB 3.0 claim rules."""


def _epoch(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def claims_for(credential: dict) -> dict:
    """The registered claims OB 3.0 requires, derived from the credential."""
    issuer = credential["issuer"]
    claims = {
        "iss": issuer["id"] if isinstance(issuer, dict) else issuer,
        "jti": credential["id"],
        "nbf": _epoch(credential["validFrom"]),
    }
    subject_id = credential.get("credentialSubject", {}).get("id")
    if subject_id:
        claims["sub"] = subject_id
    if credential.get("validUntil"):
        claims["exp"] = _epoch(credential["validUntil"])
    return claims


def strip_claims(payload: dict) -> dict:
    """The credential inside a VC-JWT payload: the payload less the JWT registered claims."""
    return {key: value for key, value in payload.items() if key not in REGISTERED_CLAIMS}


def _payload(credential: dict) -> bytes:
    payload = {**credential, **claims_for(credential)}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _header(algorithm: str, kid_url: str) -> str:
    return json.dumps({"alg": algorithm, "kid": kid_url, "typ": "JWT"})


def sign(credential: dict, key: jwk.JWK, kid_url: str) -> str:
    """Compact JWS of the credential with the OB 3.0 claims (through jwcrypto)."""
    algorithm = key.get("alg") or ("RS256" if key.get("kty") == "RSA" else "EdDSA")
    token = jws.JWS(_payload(credential))
    token.add_signature(key, alg=algorithm, protected=_header(algorithm, kid_url))
    return token.serialize(compact=True)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign_with(credential: dict, private_key: Any, algorithm: str, kid_url: str) -> str:
    """The token `sign` makes, byte for byte, from an already parsed cryptography key.

    RS256 (RSASSA-PKCS1-v1_5) and Ed25519 signatures are deterministic, so the same header,
    payload and key give the same bytes as jwcrypto (tests/badges/test_issuance_fast.py); this
    skips jwcrypto's per-token set-up (a deep copy of its header registry, the header parsed
    back), which costs more than half of what the RSA signature itself does.
    """
    signing_input = _b64(_header(algorithm, kid_url).encode()) + b"." + _b64(_payload(credential))
    if algorithm == "RS256":
        signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif algorithm == "EdDSA":
        signature = private_key.sign(signing_input)
    else:
        raise ValueError(f"no direct signing for {algorithm}")
    return (signing_input + b"." + _b64(signature)).decode()


def unverified(token: str) -> tuple[dict, dict]:
    """Header and payload of a compact JWS without checking anything (to report on it)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwtError("not a compact JWS (expected three dot-separated parts)")
    try:
        header = json_decode(base64url_decode(parts[0]))
        payload = json_decode(base64url_decode(parts[1]))
    except Exception as exc:
        raise JwtError(f"the JWT is not base64url-encoded JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JwtError("the JWT header and payload must be JSON objects")
    return header, payload


def claim_problems(header: dict, payload: dict) -> list[str]:
    """Every way the token breaks OB 3.0 section 8.2's header and claim rules."""
    problems = []
    extra = set(header) - ALLOWED_HEADER
    if extra:
        problems.append(f"header has fields OB 3.0 does not allow: {', '.join(sorted(extra))}")
    if header.get("alg") not in ALGORITHMS:
        problems.append(f"unsupported alg {header.get('alg')!r}")
    if "typ" in header and header["typ"] != "JWT":
        problems.append("typ must be JWT")
    if "jwk" in header and isinstance(header["jwk"], dict) and "d" in header["jwk"]:
        problems.append("the header carries a private key")
    try:
        expected = claims_for(payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [*problems, f"the payload is not a credential: missing or bad {exc}"]
    for claim, value in expected.items():
        if payload.get(claim) != value:
            problems.append(f"claim {claim} must equal the credential's value {value!r}")
    if "exp" in payload and "exp" not in expected:
        problems.append("exp given but the credential has no validUntil")
    return problems


def verify(token: str, resolve: JwkResolver) -> tuple[dict, dict]:
    """Check signature and claim rules; return (header, payload) or raise JwtError."""
    header, payload = unverified(token)
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise JwtError("the JWT header has no kid")
    key = resolve(kid)
    if key is None:
        raise JwtError(f"unknown signing key {kid}")
    try:
        checked = jws.JWS()
        checked.deserialize(token.strip())
        checked.verify(key, alg=header.get("alg"))
    except Exception:
        raise JwtError("the JWT signature does not match") from None
    problems = claim_problems(header, payload)
    if problems:
        raise JwtError("; ".join(problems))
    return header, payload
