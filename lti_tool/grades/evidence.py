"""The evidence archive: an append-only, hash-chained record of every decision change.

It exists apart from the evaluation service because the archive has its own readers: the
evaluation appends to it, while the CLI and the pages verify the chain and export one learner's
records (Art. 9/4). Each platform has one chain; a locked head row keeps it from forking.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain.evaluation import RULE_VERSION, LearnerEvaluation
from lti_tool.domain.evidence import (
    GENESIS_HASH,
    Break,
    Link,
    canonical_json,
    chain_hash,
    first_broken,
)
from lti_tool.errors import NotFound
from lti_tool.store.models.core import Person
from lti_tool.store.models.evaluation import Decision, EvidenceHead, EvidenceRecord


def inputs_digest(evaluation: LearnerEvaluation, mapping_id: int | None) -> str:
    """A fingerprint of the marks an evaluation used: it changes when any mark changes.
    (Only compared with itself, so the repr of plain strings is enough: cheaper than JSON.)"""
    marks = sorted(
        (i.kind, i.ref, str(i.score), str(i.maximum), str(i.level))
        for result in evaluation.results if not result.carried_over for i in result.inputs
    )
    return hashlib.sha256(repr((mapping_id, marks)).encode()).hexdigest()



def append_evidence(db: Session, *, platform_id: int, event: str, payload: dict,
                    decision_id: int | None = None, offering_id: int | None = None,
                    person_id: int | None = None) -> EvidenceRecord:
    """Append one record to the platform's chain; the locked head row keeps it from forking."""
    head = db.execute(select(EvidenceHead).where(EvidenceHead.platform_id == platform_id)
                      .with_for_update().execution_options(populate_existing=True)).scalar()
    if head is None:
        head = EvidenceHead(platform_id=platform_id, seq=0, last_hash=GENESIS_HASH)
        try:
            with db.begin_nested():
                db.add(head)
        except IntegrityError:
            head = db.execute(select(EvidenceHead).where(EvidenceHead.platform_id == platform_id)
                              .with_for_update().execution_options(populate_existing=True)
                              ).scalar_one()
    text = canonical_json({"event": event, **payload})
    digest = chain_hash(head.last_hash, text)
    record = EvidenceRecord(platform_id=platform_id, seq=head.seq + 1, decision_id=decision_id,
                            offering_id=offering_id, person_id=person_id, event=event,
                            payload=text, prev_hash=head.last_hash, hash=digest)
    head.seq += 1
    head.last_hash = digest
    db.add(record)
    db.flush()
    return record


@dataclass(frozen=True)
class BrokenRecord:
    platform_id: int
    id: int
    seq: int
    reason: str

    def __str__(self) -> str:
        return (f"evidence record {self.id} (platform {self.platform_id}, seq {self.seq}): "
                f"{self.reason}")


def verify_chain(db: Session) -> BrokenRecord | None:
    """Check every platform's chain; the first record that does not fit, or None."""
    heads = {h.platform_id: h for h in db.scalars(select(EvidenceHead))}
    platforms = sorted(set(heads) | set(db.scalars(select(EvidenceRecord.platform_id).distinct())))
    for platform_id in platforms:
        rows = db.execute(
            select(EvidenceRecord.id, EvidenceRecord.seq, EvidenceRecord.prev_hash,
                   EvidenceRecord.hash, EvidenceRecord.payload)
            .where(EvidenceRecord.platform_id == platform_id).order_by(EvidenceRecord.seq)
            .execution_options(yield_per=1000))
        last: Link | None = None

        def links(rows=rows) -> Iterable[Link]:
            nonlocal last
            for row in rows:
                last = Link(*row)
                yield last

        broken: Break | None = first_broken(links())
        if broken is not None:
            return BrokenRecord(platform_id, broken.id, broken.seq, broken.reason)
        head = heads.get(platform_id)
        end_seq, end_hash = (last.seq, last.hash) if last else (0, GENESIS_HASH)
        if head is None or head.seq != end_seq or head.last_hash != end_hash:
            return BrokenRecord(platform_id, last.id if last else 0, end_seq,
                                "the chain ends before its recorded head: records were removed "
                                "at the end")
    return None


def export_evidence(db: Session, platform_id: int, person_id: int,
                    offering_id: int | None = None) -> dict:
    """One learner's decisions and archived records as JSON-ready data (Art. 9/4)."""
    person = db.get(Person, person_id)
    if person is None or person.platform_id != platform_id:
        raise NotFound("No such learner on this platform.")
    query = select(Decision).where(Decision.platform_id == platform_id,
                                   Decision.person_id == person_id)
    records = select(EvidenceRecord).where(EvidenceRecord.platform_id == platform_id,
                                           EvidenceRecord.person_id == person_id)
    if offering_id is not None:
        query = query.where(Decision.offering_id == offering_id)
        records = records.where(EvidenceRecord.offering_id == offering_id)
    broken = verify_chain(db)
    return {
        "person": {"id": person.id, "sub": person.sub, "name": person.name},
        "decisions": [_decision_json(d) for d in db.scalars(query.order_by(Decision.id))],
        # A verifier re-hashes canonical_json(payload) with prev_hash to check each record.
        "records": [{"id": r.id, "seq": r.seq, "event": r.event, "hash": r.hash,
                     "prev_hash": r.prev_hash, "created_at": r.created_at.isoformat(),
                     "payload": json.loads(r.payload)}
                    for r in db.scalars(records.order_by(EvidenceRecord.seq))],
        "chain": {"algorithm": "sha256(prev_hash + '\\n' + canonical_json)",
                  "verified": broken is None, "first_broken": str(broken) if broken else None},
        "rule_version": RULE_VERSION,
    }


def _decision_json(decision: Decision) -> dict:
    return {
        "id": decision.id, "offering_id": decision.offering_id, "status": decision.status,
        "reevaluations_used": decision.reevaluations_used, "mapping_id": decision.mapping_id,
        "share_attained": str(decision.share_attained), "passed_via": decision.passed_via,
        "passed_at": decision.passed_at.isoformat() if decision.passed_at else None,
        "decided_at": decision.decided_at.isoformat() if decision.decided_at else None,
        "outcomes": decision.outcomes,
    }
