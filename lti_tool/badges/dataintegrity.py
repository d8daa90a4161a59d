"""Data Integrity proofs with the `eddsa-rdfc-2022` cryptosuite (W3C VC DI EdDSA).

hashData = SHA-256(canonical proof options) || SHA-256(canonical document without proof);
the proof value is the Ed25519 signature of that, base58btc multibase. The only DI suite
1EdTech certifies for Open Badges 3.0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lti_tool.badges import jsonld
from lti_tool.badges.multibase import multibase_decode, multibase_encode

CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_TYPE = "DataIntegrityProof"

Canonicalizer = Callable[[dict, jsonld.DocumentLoader], str]
KeyResolver = Callable[[str], Ed25519PublicKey | None]


class ProofError(Exception):
    """The proof is missing, malformed, from an unknown key, or does not match."""


@dataclass(frozen=True)
class HashData:
    """The intermediate values of one proof, exposed so tests can compare them to vectors."""

    proof_canonical: str
    document_canonical: str

    @property
    def proof_hash(self) -> bytes:
        return hashlib.sha256(self.proof_canonical.encode()).digest()

    @property
    def document_hash(self) -> bytes:
        return hashlib.sha256(self.document_canonical.encode()).digest()

    @property
    def to_sign(self) -> bytes:
        return self.proof_hash + self.document_hash


def hash_data(document: dict, proof_options: dict, loader: jsonld.DocumentLoader,
              canonicalize: Canonicalizer = jsonld.canonicalize) -> HashData:
    unsigned = {key: value for key, value in document.items() if key != "proof"}
    options = {key: value for key, value in proof_options.items()
               if key not in ("proofValue", "@context")}
    options["@context"] = unsigned["@context"]
    return HashData(proof_canonical=canonicalize(options, loader),
                    document_canonical=canonicalize(unsigned, loader))


def proof_options(verification_method: str, created: str) -> dict:
    return {"type": PROOF_TYPE, "cryptosuite": CRYPTOSUITE, "created": created,
            "verificationMethod": verification_method, "proofPurpose": "assertionMethod"}


def sign(document: dict, key: Ed25519PrivateKey, *, verification_method: str, created: str,
         loader: jsonld.DocumentLoader,
         canonicalize: Canonicalizer = jsonld.canonicalize) -> dict:
    """A copy of `document` with an eddsa-rdfc-2022 proof appended to its `proof` array."""
    options = proof_options(verification_method, created)
    data = hash_data(document, options, loader, canonicalize)
    proof = {**options, "proofValue": multibase_encode(key.sign(data.to_sign))}
    existing = document.get("proof", [])
    proofs = existing if isinstance(existing, list) else [existing]
    return {**document, "proof": [*proofs, proof]}


def verify(document: dict, resolve_key: KeyResolver, loader: jsonld.DocumentLoader,
           canonicalize: Canonicalizer = jsonld.canonicalize) -> dict:
    """Check the document's eddsa-rdfc-2022 proof; return it, or raise ProofError saying why
    (CanonicalizationRefused, a 422, when `canonicalize` is bounded and the document is too
    expensive)."""
    proofs = document.get("proof")
    if isinstance(proofs, dict):
        proofs = [proofs]
    if not isinstance(proofs, list):
        raise ProofError("the credential has no embedded proof")
    ours = [p for p in proofs if isinstance(p, dict) and p.get("cryptosuite") == CRYPTOSUITE]
    if not ours:
        raise ProofError(f"the credential has no {CRYPTOSUITE} proof")
    proof = ours[0]
    if proof.get("type") != PROOF_TYPE or proof.get("proofPurpose") != "assertionMethod":
        raise ProofError("the proof is not an assertionMethod DataIntegrityProof")
    method = proof.get("verificationMethod")
    value = proof.get("proofValue")
    if not isinstance(method, str) or not isinstance(value, str):
        raise ProofError("the proof lacks verificationMethod or proofValue")
    public_key = resolve_key(method)
    if public_key is None:
        raise ProofError(f"unknown verification method {method}")
    try:
        signature = multibase_decode(value)
        data = hash_data(document, proof, loader, canonicalize)
        public_key.verify(signature, data.to_sign)
    except jsonld.CanonicalizationRefused:
        raise
    except InvalidSignature:
        raise ProofError("the signature does not match the credential") from None
    except jsonld.ContextNotAvailable as exc:
        raise ProofError(str(exc)) from None
    except Exception as exc:  # pyld raises JsonLdError for malformed JSON-LD
        raise ProofError(f"the credential is not valid JSON-LD: {exc}") from None
    return proof
