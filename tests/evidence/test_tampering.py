"""Rewriting history with the database's password is detected and named (SQLite and, with
LTI_TOOL_TEST_DATABASE_URL, PostgreSQL): every change goes in as plain SQL, committed, then
`lti-tool evidence verify` runs on a fresh session as an auditor would."""

from __future__ import annotations

import json

from jwcrypto import jwk, jws

from lti_tool.domain.evidence import statement_hash
from tests.evidence.conftest import Archive


def _broken(archive: Archive) -> str:
    result = archive.verify()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.stderr


def test_the_untouched_archive_verifies(archive: Archive) -> None:
    records, checkpoints = archive.records(), archive.checkpoints()
    assert [c.seq for c in checkpoints] == [3, 4, 5]
    assert [r.event for r in records] == ["failed"] * 3 + ["reevaluation_granted"] * 2
    ok = archive.verify()
    assert ok.exit_code == 0, ok.output
    assert "5 records and 3 signed checkpoints in 1 chain(s)" in ok.output


def test_an_edited_record_is_named(archive: Archive) -> None:
    target = archive.records()[1]
    archive.sql("UPDATE evidence_record SET payload = replace(payload, '\"to\":\"failed\"', "
                "'\"to\":\"passed\"') WHERE id = :i", i=target.id)
    message = _broken(archive)
    assert f"evidence record {target.id} (seq 2)" in message
    assert "payload does not match its content hash (edited)" in message


def test_hashes_recomputed_without_the_key_are_caught_by_the_signed_checkpoint(
        archive: Archive) -> None:
    """The issue's attack: failed -> passed (here to failed_final) and the SHA-256 chain
    recomputed. Every link fits again; checkpoint #1 no longer does."""
    archive.sql("UPDATE evidence_record SET payload = replace(payload, '\"to\":\"failed\"', "
                "'\"to\":\"failed_final\"') WHERE seq = 2")
    archive.rehash_from(2)
    message = _broken(archive)
    assert "checkpoint #1 (seq 3)" in message
    assert "between seq 1 and 3 was changed and the hashes recomputed" in message


def test_rewriting_the_newest_record_is_caught_too(archive: Archive) -> None:
    """No unsigned tail: the transaction that appended seq 5 signed it when it committed."""
    archive.sql("UPDATE evidence_record SET payload = replace(payload, 'instructor', 'policy')"
                " WHERE seq = 5")
    archive.rehash_from(5)
    message = _broken(archive)
    assert "checkpoint #3 (seq 5)" in message and "between seq 5 and 5" in message


def test_a_deleted_record_is_named(archive: Archive) -> None:
    after = archive.records()[2]
    archive.sql("DELETE FROM evidence_record WHERE seq = 2")
    message = _broken(archive)
    assert f"evidence record {after.id} (seq 3)" in message
    assert "sequence jumps from 1 to 3: a record was removed" in message


def test_deleting_the_newest_records_is_named(archive: Archive) -> None:
    archive.sql("DELETE FROM evidence_record WHERE seq >= 4")
    archive.sql("UPDATE evidence_head SET seq = 3, last_hash = (SELECT hash FROM "
                "evidence_record WHERE seq = 3)")
    message = _broken(archive)
    assert "checkpoint #2 (seq 4)" in message and "records were removed at the end" in message


def test_reordered_records_are_named(archive: Archive) -> None:
    first, second = archive.records()[:2]
    archive.sql("UPDATE evidence_record SET seq = -1 WHERE id = :i", i=first.id)
    archive.sql("UPDATE evidence_record SET seq = 1 WHERE id = :i", i=second.id)
    archive.sql("UPDATE evidence_record SET seq = 2 WHERE id = :i", i=first.id)
    message = _broken(archive)
    assert f"evidence record {second.id} (seq 1)" in message
    assert "previous-hash does not match the record before it" in message


def test_an_edited_checkpoint_is_named(archive: Archive) -> None:
    archive.sql("UPDATE evidence_checkpoint SET statement = replace(statement, :a, :b) "
                "WHERE number = 2", a='"seq":4', b='"seq":3')
    message = _broken(archive)
    assert "checkpoint #2 (seq 4)" in message and "statement does not match its hash" in message


def test_a_checkpoint_edited_with_its_hash_recomputed_fails_its_signature(
        archive: Archive) -> None:
    cp = archive.checkpoints()[1]
    forged = cp.statement.replace('"reason":"commit"', '"reason":"daily"')
    archive.sql("UPDATE evidence_checkpoint SET statement = :s, statement_hash = :h WHERE id = :i",
                s=forged, h=statement_hash(forged), i=cp.id)
    message = _broken(archive)
    assert "checkpoint #2 (seq 4)" in message
    # The next checkpoint names the old hash, or the signature covers another statement.
    assert "signature covers another statement" in message


def test_a_removed_checkpoint_is_named(archive: Archive) -> None:
    archive.sql("DELETE FROM evidence_checkpoint WHERE number = 2")
    message = _broken(archive)
    assert "checkpoint #2 is missing (#3 follows #1)" in message


def test_a_checkpoint_signed_with_a_key_the_installation_does_not_hold_is_named(
        archive: Archive) -> None:
    """Whoever writes the database can add a key row and sign with it: not trusted."""
    own = jwk.JWK.generate(kty="OKP", crv="Ed25519", kid="badge-ed25519-mallory")
    public = own.export_public(as_dict=True)
    public.update(kid="badge-ed25519-mallory", alg="EdDSA", use="sig")
    archive.sql("INSERT INTO tool_key (kid, purpose, algorithm, public_jwk, private_path, "
                "active, created_at) VALUES ('badge-ed25519-mallory', 'badge-ed25519', 'EdDSA', "
                ":j, '/nonexistent/mallory.pem', false, CURRENT_TIMESTAMP)",
                j=json.dumps(public))
    cp = archive.checkpoints()[2]
    forged = cp.statement.replace(cp.kid, "badge-ed25519-mallory")
    token = jws.JWS(forged.encode())
    token.add_signature(own, alg="EdDSA", protected=json.dumps(
        {"alg": "EdDSA", "kid": "badge-ed25519-mallory"}))
    archive.sql("UPDATE evidence_checkpoint SET statement = :s, statement_hash = :h, kid = :k, "
                "jws = :t WHERE id = :i", s=forged, h=statement_hash(forged),
                k="badge-ed25519-mallory", t=token.serialize(compact=True), i=cp.id)
    message = _broken(archive)
    assert "checkpoint #3 (seq 5)" in message
    assert "private part this installation does not hold" in message


def test_truncation_with_its_checkpoints_is_caught_against_the_exported_file(
        archive: Archive, tmp_path) -> None:
    """Dropping the newest records and their checkpoints leaves a consistent, shorter archive;
    the file filed with the records office proves what is missing."""
    from click.testing import CliRunner

    from lti_tool.cli import main

    out = tmp_path / "checkpoints.json"
    exported = CliRunner().invoke(main, ["evidence", "checkpoint", "export", "--out", str(out)],
                                  obj={"runtime": archive.runtime})
    assert exported.exit_code == 0, exported.output
    assert "Wrote 3 checkpoint(s) of 1 chain(s)" in exported.output
    assert archive.verify("--against", str(out)).exit_code == 0
    archive.sql("DELETE FROM evidence_checkpoint WHERE number = 3")
    archive.sql("DELETE FROM evidence_record WHERE seq = 5")
    archive.sql("UPDATE evidence_head SET seq = 4, last_hash = (SELECT hash FROM "
                "evidence_record WHERE seq = 4)")
    assert archive.verify().exit_code == 0  # consistent on its own ...
    result = archive.verify("--against", str(out))
    assert result.exit_code == 1  # ... but not with what was exported
    assert "checkpoint #3 (seq 5) was exported but is missing from the database" in result.stderr


def test_a_chain_whose_daily_checkpoint_stopped_is_a_warning(archive: Archive) -> None:
    from datetime import timedelta

    from lti_tool.store.db import utcnow

    archive.sql("UPDATE evidence_checkpoint SET created_at = :t", t=utcnow() - timedelta(days=5))
    result = archive.verify()
    assert result.exit_code == 0
    assert "newest checkpoint is 5 days old; is `lti-tool worker` running the daily job?" in \
        result.stderr
