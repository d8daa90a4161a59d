"""Verify a credential given as JSON, VC-JWT, or a baked PNG or SVG, reporting each check.

Shared by `POST /verify` and `lti-tool verify FILE`. The input is untrusted: reading failures
raise `BadRequest`; everything after reading becomes a failed check, never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import jsonschema
from sqlalchemy.orm import Session

from lti_tool.badges import baking, dataintegrity, fastcanon, jsonld, vcjwt
from lti_tool.badges.signing import (
    badge_key,
    ed25519_resolver,
    institution_for_issuer,
    issuer_id,
    jwk_resolver,
)
from lti_tool.badges.status import is_revoked
from lti_tool.errors import BadRequest, PayloadTooLarge
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "achievementcredential.json"
# A credential is tens of kilobytes; JSON-LD processing of megabytes would tie up a worker.
MAX_CREDENTIAL_CHARS = 512 * 1024
JWT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


@dataclass
class Check:
    name: str
    passed: bool | None  # None: could not be checked here (not a failure)
    message: str  # for the CLI and JSON (English, with the technical detail)
    words: str = ""  # what pages say (badges/_checks.html translates it), "" for the message
    value: str | None = None  # the moment (shown through Babel) or name `words` refers to


@dataclass
class Report:
    format: str
    credential: dict | None
    checks: list[Check] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return bool(self.checks) and all(check.passed is not False for check in self.checks)

    @property
    def status(self) -> str:
        """valid | revoked | expired | not_yet_valid | invalid, for people and badges."""
        failed = {check.name for check in self.checks if check.passed is False}
        if not failed:
            return "valid"
        if failed == {"status"}:
            return "revoked"
        if failed == {"dates"}:
            expired = any(c.name == "dates" and "expired" in c.message for c in self.checks)
            return "expired" if expired else "not_yet_valid"
        return "invalid"

    def to_dict(self) -> dict:
        credential = self.credential or {}
        issuer = credential.get("issuer")
        return {
            "valid": self.valid,
            "status": self.status,
            "format": self.format,
            "credential": {
                "id": credential.get("id"),
                "name": credential.get("name"),
                "issuer": issuer.get("name") if isinstance(issuer, dict) else issuer,
                "validFrom": credential.get("validFrom"),
            } if self.credential else None,
            "checks": [{"name": c.name, "passed": c.passed, "message": c.message}
                       for c in self.checks],
        }


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft201909Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft201909Validator(
        schema, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER)


def schema_errors(credential: dict) -> list[str]:
    """1EdTech's AchievementCredential JSON Schema, as messages with their paths."""
    errors = sorted(_validator().iter_errors(credential), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.path) or '(root)'}: {e.message[:200]}"
            for e in errors]


def _parse_text(text: str) -> tuple[dict, str | None]:
    text = text.strip()
    if len(text) > MAX_CREDENTIAL_CHARS:
        raise BadRequest(f"The credential is larger than {MAX_CREDENTIAL_CHARS // 1024} KB.")
    if text.startswith("{"):
        try:
            credential = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"The file is not valid JSON: {exc}") from None
        if not isinstance(credential, dict):
            raise BadRequest("The JSON is not a credential object.")
        return credential, None
    if JWT_PATTERN.match(text):
        try:
            _header, payload = vcjwt.unverified(text)
        except (vcjwt.JwtError, RecursionError) as exc:
            raise BadRequest(f"The JWT cannot be read: {exc}") from None
        return payload, text
    raise BadRequest("Not a credential: expected JSON, a VC-JWT, or a baked PNG or SVG image.")


def read_credential(data: bytes) -> tuple[str, dict, str | None]:
    """(format, credential, jwt or None) from uploaded bytes; BadRequest when unreadable."""
    try:
        if data.startswith(baking.PNG_SIGNATURE):
            credential, token = _parse_text(baking.extract_png(data))
            return "png", credential, token
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequest("The file is neither a PNG image nor UTF-8 text.") from None
        if text.lstrip().startswith("<"):
            credential, token = _parse_text(baking.extract_svg(text))
            return "svg", credential, token
        credential, token = _parse_text(text)
        return ("jwt" if token else "json"), credential, token
    except baking.BakingError as exc:
        raise BadRequest(str(exc)) from None


def _guard(name: str, run: Callable[[], Check]) -> Check:
    """A check that crashes on hostile input is a failed check, not a server error."""
    try:
        return run()
    except jsonld.CanonicalizationRefused:
        raise  # a 422 for the whole request: the work it asks for is refused
    except Exception as exc:
        return Check(name, False, f"could not be checked: {type(exc).__name__}: {exc}"[:300])


def _when(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a date-time string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value} has no time zone")
    return moment


class Verifier:
    """Runs the checks against the keys and status lists of the institution the credential
    names as its issuer: a key of another institution never verifies it."""

    def __init__(self, db: Session, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.loader = jsonld.loader_for(settings.base_url)
        self.leeway = timedelta(seconds=settings.jwt_leeway_seconds)
        self.limits = jsonld.CanonicalizationLimits(
            max_quads=settings.verify_max_quads, max_blank_nodes=settings.verify_max_blank_nodes,
            max_work=settings.verify_max_work, seconds=float(settings.verify_timeout_seconds))

    def canonicalize(self, document: dict, loader: jsonld.DocumentLoader) -> str:
        """Bounded RDFC-1.0: the fast path for the tool's own shapes, pyld for the rest."""
        return fastcanon.canonicalize(document, loader, self.limits)

    def verify_bytes(self, data: bytes) -> Report:
        if len(data) > self.settings.verify_max_bytes:
            raise PayloadTooLarge(f"The credential is larger than "
                                  f"{self.settings.verify_max_bytes // 1024} KB, the most this "
                                  "verifier reads.")
        kind, credential, token = read_credential(data)
        return self.verify(credential, token, kind)

    def verify(self, credential: dict, token: str | None, kind: str) -> Report:
        report = Report(format=kind, credential=credential)
        try:
            self.institution = institution_for_issuer(self.db, self.settings,
                                                      credential.get("issuer"))
        except Exception:  # hostile input: the issuer check reports it
            self.institution = None
        report.checks.append(Check("format", True, f"read a credential from {kind.upper()}",
                                   "read"))
        report.checks.append(_guard("schema", lambda: self._schema(credential)))
        if token is not None:
            report.checks.append(_guard("jwt", lambda: self._jwt(token)))
        embedded = credential if token is None else vcjwt.strip_claims(credential)
        report.checks.append(_guard("proof", lambda: self._proof(embedded, token is None)))
        report.checks.append(_guard("issuer", lambda: self._issuer(embedded, token)))
        report.checks.append(_guard("dates", lambda: self._dates(credential)))
        report.checks.append(_guard("status", lambda: self._status(credential)))
        return report

    def _schema(self, credential: dict) -> Check:
        errors = schema_errors(credential)
        if errors:
            return Check("schema", False, "; ".join(errors[:5]))
        return Check("schema", True, "valid against 1EdTech's Open Badges 3.0 JSON Schema",
                     "schema_ok")

    def _jwt(self, token: str) -> Check:
        try:
            header, _payload = vcjwt.verify(token, jwk_resolver(self.db, self.settings,
                                                                self.institution))
        except vcjwt.JwtError as exc:
            return Check("jwt", False, str(exc))
        return Check("jwt", True, f"VC-JWT signature ({header['alg']}) and OB 3.0 claims valid",
                     "jwt_ok")

    def _proof(self, credential: dict, required: bool) -> Check:
        if "proof" not in credential and not required:
            return Check("proof", None, "no embedded proof (the JWT signature covers it)",
                         "no_proof")
        try:
            proof = dataintegrity.verify(
                credential, ed25519_resolver(self.db, self.settings, self.institution),
                self.loader, self.canonicalize)
        except dataintegrity.ProofError as exc:
            return Check("proof", False, str(exc))
        return Check("proof", True, f"{proof['cryptosuite']} Data Integrity proof valid",
                     "proof_ok", proof["cryptosuite"])

    def _issuer(self, credential: dict, token: str | None) -> Check:
        """The credential names one of our institutions, and the keys that signed it are that
        institution's own."""
        issuer = credential.get("issuer")
        named_issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
        if self.institution is None:
            return Check("issuer", False, f"issued by {str(named_issuer)[:200]!r}, not by an "
                                          "institution of this installation; its keys are "
                                          "unknown here")
        expected = issuer_id(self.settings, self.institution)
        named = []
        proofs = credential.get("proof")
        for proof in proofs if isinstance(proofs, list) else [proofs]:
            if isinstance(proof, dict) and "verificationMethod" in proof:
                named.append(str(proof["verificationMethod"]))
        if token is not None:
            named.append(str(vcjwt.unverified(token)[0].get("kid", "")))
        foreign = [key for key in named if not self._owns(key, expected)]
        if foreign or not named:
            return Check("issuer", False, f"signed with keys the issuer does not publish: "
                                          f"{', '.join(k[:200] for k in foreign) or 'none named'}")
        return Check("issuer", True, f"{expected} publishes the signing keys", "keys_ok")

    def _owns(self, key: str, expected_issuer: str) -> bool:
        """A verificationMethod of the issuer's own profile, or a /keys/<kid> of one of the
        issuer institution's badge keys."""
        if key.startswith(expected_issuer + "#"):
            return True
        prefix = self.settings.url("/keys/")
        if not key.startswith(prefix) or self.institution is None:
            return False
        return badge_key(self.db, self.institution.id, key[len(prefix):][:100]) is not None

    def _dates(self, credential: dict) -> Check:
        now = utcnow()
        valid_from = _when(credential.get("validFrom"))
        if valid_from > now + self.leeway:
            return Check("dates", False, f"not valid before {credential['validFrom']}",
                         "not_before", credential["validFrom"])
        if credential.get("validUntil"):
            if _when(credential["validUntil"]) <= now - self.leeway:
                return Check("dates", False, f"expired on {credential['validUntil']}",
                             "expired", credential["validUntil"])
            return Check("dates", True, f"valid until {credential['validUntil']}",
                         "until", credential["validUntil"])
        return Check("dates", True, f"valid since {credential['validFrom']}, no expiry",
                     "since", credential["validFrom"])

    def _status(self, credential: dict) -> Check:
        entry = credential.get("credentialStatus")
        if entry is None:
            return Check("status", None, "the credential has no status entry", "no_status")
        entries = entry if isinstance(entry, list) else [entry]
        prefix = self.settings.url("/status/")
        for item in entries:
            if item.get("type") != "BitstringStatusListEntry":
                continue
            url = str(item.get("statusListCredential", ""))
            if not url.startswith(prefix):
                return Check("status", None, f"status list {url} is not this tool's")
            revoked = is_revoked(self.db, url[len(prefix):], int(item["statusListIndex"]),
                                 self.institution.id if self.institution else -1)
            if revoked is None:
                return Check("status", False, f"status list {url[:200]} is not the issuer's")
            if revoked:
                return Check("status", False, "revoked by the issuer", "revoked")
            return Check("status", True, "not revoked (Bitstring Status List)", "not_revoked")
        return Check("status", None, "no Bitstring Status List entry", "no_status")
