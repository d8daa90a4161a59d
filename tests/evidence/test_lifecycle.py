"""Nothing disappears by accident; retention purge and erasure keep the archive verifying and
the credential resolvable, revocable and verifiable (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from lti_tool.badges import status
from lti_tool.cli import main
from lti_tool.grades.evidence import append_evidence, verify_chain
from lti_tool.grades.lifecycle import erase_person, pseudonym, purge_expired
from lti_tool.store.db import utcnow
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.core import AuditEntry, Membership, Person, Platform, WebSession
from lti_tool.store.models.evaluation import EvidenceRecord
from tests.badges.conftest import PASSED_AT
from tests.conftest import institution_for_new_platform
from tests.evidence.conftest import Archive, issue_to


def _cli(runtime, *args: str):
    return CliRunner().invoke(main, list(args), obj={"runtime": runtime})


# --- RESTRICT --------------------------------------------------------------------------------

@pytest.mark.parametrize("table, column", [("person", "id"), ("offering", "id"),
                                           ("platform", "id")])
def test_the_database_refuses_to_delete_what_evidence_refers_to(archive: Archive, table: str,
                                                                column: str) -> None:
    """Even plain SQL (PRAGMA foreign_keys on SQLite; PostgreSQL) cannot cascade it away."""
    target = {"person": archive.course.learners[0].id, "offering": archive.course.offering.id,
              "platform": archive.course.platform.id}[table]
    with pytest.raises(IntegrityError):
        archive.db.execute(text(f"DELETE FROM {table} WHERE {column} = :i"), {"i": target})
        archive.db.flush()
    archive.db.rollback()
    assert len(archive.records()) == 5
    assert verify_chain(archive.db, archive.runtime.settings) is None


def test_removing_a_registration_with_evidence_is_refused_and_changes_nothing(
        archive: Archive) -> None:
    platform_id = archive.course.platform.id
    plain = _cli(archive.runtime, "platform", "remove", str(platform_id))
    assert plain.exit_code == 1 and "Disable it instead" in plain.stderr
    forced = _cli(archive.runtime, "platform", "remove", str(platform_id), "--yes")
    assert forced.exit_code == 1, forced.output
    assert "evidence records" in forced.stderr and "never deleted with a registration" \
        in forced.stderr and "Disable it instead" in forced.stderr
    archive.db.expire_all()
    assert archive.db.get(Platform, platform_id) is not None
    assert archive.verify().exit_code == 0


def test_a_registration_that_holds_nothing_kept_is_still_removed(runtime) -> None:
    with runtime.sessions() as db:
        db.add(Platform(issuer="https://empty.example.edu", client_id="c",
                        auth_login_url="https://empty.example.edu/a",
                        auth_token_url="https://empty.example.edu/t", status="active",
                        institution_id=institution_for_new_platform(db).id))
        db.commit()
        platform_id = db.scalar(select(Platform.id).where(Platform.client_id == "c"))
    removed = _cli(runtime, "platform", "remove", str(platform_id))
    assert removed.exit_code == 0, removed.output


def test_a_credential_holder_and_audit_actor_cannot_be_deleted(world, client) -> None:
    person, credential = issue_to(world, "holder")
    world.db.add(AuditEntry(platform_id=world.platform.id, actor_person_id=person.id,
                            action="credential.accept", target=credential.public_id))
    world.db.commit()
    for table, target in (("person", person.id), ("platform", world.platform.id)):
        with pytest.raises(IntegrityError):
            world.db.execute(text(f"DELETE FROM {table} WHERE id = :i"), {"i": target})
            world.db.flush()
        world.db.rollback()
    # Still resolvable and revocable.
    assert client.get(f"/credentials/{credential.public_id}.json").status_code == 200
    status.revoke(world.db, world.settings, credential, reason="test", actor_person_id=None,
                  actor_label="t")
    world.db.commit()
    assert world.db.get(Credential, credential.id).status == "revoked"


# --- retention --------------------------------------------------------------------------------

def test_purge_removes_expired_payloads_with_a_signed_record_and_verify_stays_green(
        archive: Archive, settings) -> None:
    db = archive.db
    db.add(WebSession(token_hash="t" * 64, platform_id=archive.course.platform.id,
                      person_id=archive.course.learners[2].id, role="learner",
                      csrf_secret="c", expires_at=utcnow() - timedelta(days=40)))
    db.commit()
    later = utcnow() + timedelta(days=settings.retention_evidence_days + 1)
    summary = purge_expired(db, settings, now=later)
    db.commit()
    platform_id = archive.course.platform.id
    assert summary[platform_id]["evidence_payloads"] == 5
    assert summary[platform_id]["sessions"] == 1
    records = archive.records()
    assert [r.payload is None for r in records] == [True] * 5 + [False]
    purge = records[-1]
    assert purge.event == "purge" and all(r.purged_by == purge.seq for r in records[:5])
    data = json.loads(purge.payload)
    assert data["records"] == [[1, 5]] and "LTI_TOOL_RETENTION_EVIDENCE_DAYS" in data["reason"]
    result = archive.verify()
    assert result.exit_code == 0, result.output
    assert f"purge record seq {purge.seq}" in result.output
    assert "evidence_payloads: 5" in result.output and "older than 3650 days" in result.output
    # A second run finds nothing more; nothing kept for ever is touched.
    assert purge_expired(db, settings, now=later) == {}


def test_a_payload_removed_without_a_purge_record_is_named(archive: Archive) -> None:
    target = archive.records()[1]
    archive.sql("UPDATE evidence_record SET payload = NULL WHERE id = :i", i=target.id)
    result = archive.verify()
    assert result.exit_code == 1
    assert f"evidence record {target.id} (seq 2): its payload was removed without a purge " \
           "record" in result.stderr
    archive.sql("UPDATE evidence_record SET purged_by = 5 WHERE id = :i", i=target.id)
    result = archive.verify()
    assert result.exit_code == 1 and "no purge record lists it" in result.stderr


def test_zero_keeps_a_kind_for_ever(archive: Archive, settings) -> None:
    import dataclasses

    keep = dataclasses.replace(settings, retention_evidence_days=0, retention_scores_days=0,
                               retention_audit_days=0, retention_sessions_days=0)
    assert purge_expired(archive.db, keep, now=utcnow() + timedelta(days=100000)) == {}


# --- erasure ----------------------------------------------------------------------------------

def test_erasure_removes_what_no_duty_covers_and_records_what_was_kept(
        archive: Archive, settings) -> None:
    learner = archive.course.learners[0]
    learner.email = "s0@example.edu"
    archive.db.commit()
    sub = learner.sub
    result = _cli(archive.runtime, "people", "erase", str(learner.id), "--reason",
                  "request 2026/17 by e-mail", "--by", "DPO <dpo@example.edu>")
    assert result.exit_code == 0, result.output
    assert "Kept 1 decisions" in result.output and "Kept 2 evidence_records" in result.output
    db = archive.db
    db.expire_all()
    person = db.get(Person, learner.id)
    alias = pseudonym(settings, archive.course.platform, sub)
    assert person.sub == alias and person.name == "" and person.email is None
    assert db.scalar(select(Membership).where(Membership.person_id == learner.id)) is None
    record = archive.records()[-1]
    assert record.event == "erasure" and record.person_id == learner.id
    payload = json.loads(record.payload)
    assert payload["pseudonym"] == alias and payload["removed"]["memberships"] == 1
    assert {k["kind"] for k in payload["kept"]} == {"decisions", "evidence_records"}
    assert all(k["kvkk"] and k["gdpr"] and k["purpose"] for k in payload["kept"])
    assert "s0@example.edu" not in record.payload and sub not in record.payload
    audit = db.scalar(select(AuditEntry).where(AuditEntry.action == "people.erase"))
    assert audit.actor_label == "DPO <dpo@example.edu>"
    assert archive.verify().exit_code == 0
    again = _cli(archive.runtime, "people", "erase", str(learner.id), "--reason", "x")
    assert again.exit_code == 1 and "already erased" in again.stderr
    assert _cli(archive.runtime, "people", "erase", "99999", "--reason", "x").exit_code == 1


def test_the_pseudonym_is_keyed(settings, tmp_path) -> None:
    import dataclasses

    platform = Platform(issuer="https://lms.example.edu", client_id="tool")
    other = dataclasses.replace(settings, data_dir=str(tmp_path / "other"))
    assert pseudonym(settings, platform, "s0") == pseudonym(settings, platform, "s0")
    assert pseudonym(settings, platform, "s0") != pseudonym(other, platform, "s0")
    assert pseudonym(settings, platform, "s0") != pseudonym(settings, platform, "s1")


def test_erasure_needs_a_reason(archive: Archive, settings) -> None:
    from lti_tool.errors import BadRequest

    with pytest.raises(BadRequest):
        erase_person(archive.db, settings, archive.course.learners[0].id, reason=" ", by="t")


def test_an_erased_holders_credential_stays_resolvable_and_revocable(world, client) -> None:
    person, credential = issue_to(world, "holder")
    append_evidence(world.db, platform_id=world.platform.id, event="passed",
                    payload={"person_id": person.id, "at": PASSED_AT}, person_id=person.id)
    world.db.commit()
    document = credential.document
    report = erase_person(world.db, world.settings, person.id, reason="request", by="dpo")
    world.db.commit()
    assert {"kind": "credentials", "count": 1}.items() <= next(
        k for k in report["kept"] if k["kind"] == "credentials").items()
    world.db.expire_all()
    assert world.db.get(Credential, credential.id).document == document
    reply = client.get(f"/credentials/{credential.public_id}.json")
    assert reply.status_code == 200 and reply.get_data(as_text=True) == document
    assert verify_chain(world.db, world.settings) is None
    assert world.db.scalar(select(EvidenceRecord.event).order_by(
        EvidenceRecord.seq.desc()).limit(1)) == "erasure"
