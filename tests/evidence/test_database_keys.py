"""Checkpoints signed with database-stored keys (`key_storage = "database"`): the verifier
unseals the institution's key with the installation's encryption key, and trusts no private
key it cannot open or that is stored unsealed (whoever writes the database could write it)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.fernet import Fernet
from jwcrypto import jwk, jws
from sqlalchemy import select

from lti_tool.domain.evidence import statement_hash
from lti_tool.grades.evidence import verify_archive
from lti_tool.secrets import is_sealed
from lti_tool.settings import Settings
from lti_tool.store.models.core import ToolKey
from tests.evidence.conftest import Archive

MALLORY = "badge-ed25519-mallory"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, key_storage="database",
                               encryption_key=Fernet.generate_key().decode())


def test_checkpoints_signed_with_a_sealed_database_key_verify(archive: Archive) -> None:
    keys = archive.db.scalars(select(ToolKey).where(ToolKey.purpose == "badge-ed25519")).all()
    assert keys and all(is_sealed(k.private_pem) and not k.private_path for k in keys)
    result = archive.verify()
    assert result.exit_code == 0, result.output
    assert "3 signed checkpoints" in result.output


def test_another_encryption_key_is_named_not_a_crash(archive: Archive, settings) -> None:
    other = dataclasses.replace(settings, encryption_key=Fernet.generate_key().decode())
    [result] = verify_archive(archive.db, other)
    assert result.problem is not None and result.problem.what == "checkpoint"
    assert "does not hold (SecretKeyMismatch)" in result.problem.reason


def test_a_private_key_stored_in_plain_text_is_not_trusted(archive: Archive) -> None:
    """Mallory writes a key row with its private part in the clear and signs with it."""
    own = jwk.JWK.generate(kty="OKP", crv="Ed25519", kid=MALLORY)
    public = own.export_public(as_dict=True)
    public.update(kid=MALLORY, alg="EdDSA", use="sig")
    pem = own.export_to_pem(private_key=True, password=None).decode()
    archive.sql("INSERT INTO tool_key (kid, purpose, algorithm, public_jwk, private_pem, "
                "active, created_at) VALUES (:k, 'badge-ed25519', 'EdDSA', :j, :p, false, "
                "CURRENT_TIMESTAMP)", k=MALLORY, j=json.dumps(public), p=pem)
    cp = archive.checkpoints()[2]
    forged = cp.statement.replace(cp.kid, MALLORY)
    token = jws.JWS(forged.encode())
    token.add_signature(own, alg="EdDSA", protected=json.dumps({"alg": "EdDSA", "kid": MALLORY}))
    archive.sql("UPDATE evidence_checkpoint SET statement = :s, statement_hash = :h, kid = :k, "
                "jws = :t WHERE id = :i", s=forged, h=statement_hash(forged), k=MALLORY,
                t=token.serialize(compact=True), i=cp.id)
    result = archive.verify()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "checkpoint #3 (seq 5)" in result.stderr
    assert "stored in the database without this installation's seal" in result.stderr
