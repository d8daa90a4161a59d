"""eddsa-rdfc-2022 against 1EdTech's official Open Badges 3.0 test vector, byte for byte."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lti_tool.badges import builder, dataintegrity, jsonld
from lti_tool.badges.multibase import (
    b58decode,
    b58encode,
    ed25519_from_multikey,
    ed25519_multikey,
)
from tests.conftest import SPEC

VECTOR = json.loads((SPEC / "openbadges/test-vectors/eddsa-rdfc-2022-ob3.json").read_text())
LOADER = jsonld.loader_for("http://127.0.0.1:8000")


def _key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["key"]["privateKeySeedHex"]))


def _signed() -> dict:
    options = VECTOR["proofOptions"]
    return dataintegrity.sign(VECTOR["unsignedCredential"], _key(),
                              verification_method=options["verificationMethod"],
                              created=options["created"], loader=LOADER)


@pytest.mark.parametrize("canonicalize", [jsonld.canonicalize, jsonld.canonicalize_plain,
                                          jsonld.canonicalize_oxigraph])
def test_every_intermediate_value_of_the_official_vector(canonicalize) -> None:
    expected = VECTOR["expected"]
    data = dataintegrity.hash_data(VECTOR["unsignedCredential"], VECTOR["proofOptions"], LOADER,
                                   canonicalize)
    assert data.document_canonical == expected["documentCanonical"]
    assert data.proof_canonical == expected["proofCanonical"]
    assert data.document_hash.hex() == expected["documentHashHex"]
    assert data.proof_hash.hex() == expected["proofHashHex"]
    assert _key().sign(data.to_sign).hex() == expected["signatureHex"]


def test_signing_reproduces_the_proof_value_and_verifies() -> None:
    signed = _signed()
    assert signed["proof"][0]["proofValue"] == VECTOR["expected"]["proofValue"]
    public = _key().public_key()
    assert ed25519_multikey(public) == VECTOR["key"]["publicKeyMultibase"]
    method = VECTOR["proofOptions"]["verificationMethod"]
    proof = dataintegrity.verify(signed, {method: public}.get, LOADER)
    assert proof["cryptosuite"] == "eddsa-rdfc-2022"


def test_a_changed_name_fails_verification() -> None:
    signed = _signed()
    forged = {**signed, "name": "Teamwork Badge!"}
    with pytest.raises(dataintegrity.ProofError, match="does not match"):
        dataintegrity.verify(forged, lambda _m: _key().public_key(), LOADER)


def test_unknown_contexts_are_refused_not_fetched() -> None:
    doc = {**VECTOR["unsignedCredential"], "@context": ["https://example.org/ctx.jsonld"]}
    with pytest.raises(Exception) as caught:
        jsonld.canonicalize(doc, LOADER)
    chain, error = [], caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, jsonld.ContextNotAvailable) for e in chain)


def test_base58_round_trip_keeps_leading_zeros() -> None:
    for raw in (b"", b"\0\0abc", bytes(range(40))):
        assert b58decode(b58encode(raw)) == raw
    assert ed25519_from_multikey(VECTOR["key"]["publicKeyMultibase"]).public_bytes_raw().hex() \
        == VECTOR["key"]["publicKeyHex"]


def test_cached_safe_canonicalization_equals_plain_pyld_on_our_credentials() -> None:
    """The context-caching processor changes speed, never output (repeat runs hit the cache)."""
    from tests.badges.samples import AWARD, BASE, FACTS, ISSUER, RECIPIENT

    document = builder.credential(FACTS, ISSUER, RECIPIENT, AWARD, BASE, BASE + "/i.png")
    expected = jsonld.canonicalize_plain(document, LOADER)
    for _ in range(3):
        assert jsonld.canonicalize(document, LOADER) == expected
        assert jsonld.canonicalize_oxigraph(document, LOADER) == expected


def test_safe_mode_refuses_to_sign_a_property_no_context_defines() -> None:
    """pyld alone would drop the undefined `address` silently and sign without it."""
    document = {"@context": ["https://www.w3.org/ns/credentials/v2"],
                "id": "urn:uuid:1", "type": ["VerifiableCredential"],
                "issuer": {"id": "https://example.edu/i", "address": {"x": 1}},
                "validFrom": "2026-01-01T00:00:00Z", "credentialSubject": {"id": "urn:x"}}
    assert "address" not in jsonld.canonicalize_plain(document, LOADER)
    with pytest.raises(Exception) as caught:
        dataintegrity.sign(document, _key(), verification_method="https://example.edu/i#k",
                           created="2026-01-01T00:00:00Z", loader=LOADER)
    chain, error = [], caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, jsonld.DroppedProperty) for e in chain)
