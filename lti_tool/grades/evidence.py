"""The evidence archive: an append-only, hash-chained, signed record of every decision change.

It exists apart from the evaluation service because the archive has its own readers: the
evaluation appends to it, while the CLI and the pages verify the chain and export one learner's
records (Art. 9/4). Each platform registration has one chain; a locked head row keeps it from
forking. Every transaction that appends seals the chain when it commits: a checkpoint signs the
new head with the institution's Ed25519 key (`seal`), so no record is ever left unsigned; the
daily job adds a checkpoint even when nothing changed, and after each purge or erasure.

`verify_archive` checks hashes, signatures and checkpoint numbering (pure rules in
`lti_tool.domain.evidence`); `export_checkpoints` writes the signed checkpoints for an
institution's records office (RFC 3161 timestamped where configured) and `verify_against`
proves the database still holds what was exported. `export_evidence` gives one learner's
records with the chain segments from each record to the checkpoint that signs it, so the file
verifies offline with only the institution's public key, and costs only its own segment.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jwcrypto import jwk, jws
from jwcrypto.common import JWException
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain import evidence as domain_evidence
from lti_tool.domain.evaluation import RULE_VERSION, LearnerEvaluation, Mark, SourceSpec
from lti_tool.domain.evidence import (
    CHECKPOINT_TYPE,
    GENESIS_HASH,
    ChainReport,
    Checkpoint,
    Link,
    Problem,
    body_hash,
    canonical_json,
    check_chain,
    content_hash,
    link_hash,
    statement_hash,
)
from lti_tool.errors import BadRequest, NotFound
from lti_tool.secrets import SecretKeyMismatch, is_sealed
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.keys import find_public_key, private_jwk, signing_jwk
from lti_tool.store.models.core import Institution, Person, Platform, ToolKey
from lti_tool.store.models.evaluation import (
    Decision,
    EvidenceCheckpoint,
    EvidenceHead,
    EvidenceRecord,
)

log = logging.getLogger(__name__)

UNSEALED = "evidence_unsealed"  # Session.info key: platform ids appended to in this transaction
CHECKPOINT_KEY_PURPOSE = "badge-ed25519"
EXPORT_TYPE = "lti-tool/evidence-export"
CHECKPOINTS_FILE_TYPE = "lti-tool/evidence-checkpoints"
ALGORITHM = ("link = sha256('lti-tool-evidence/2\\n' + prev_hash + '\\n' + seq + '\\n' + body); "
             "body = sha256(event + '\\n' + person_id + '\\n' + offering_id + '\\n' + "
             "content_hash); content_hash = sha256(canonical payload); checkpoints: compact "
             "JWS (EdDSA) over the canonical statement")


def inputs_digest(evaluation: LearnerEvaluation, mapping_id: int | None) -> str:
    """A fingerprint of the marks an evaluation used: it changes when any mark changes.
    (Only compared with itself, so the repr of plain strings is enough: cheaper than JSON.)"""
    marks = sorted(
        (i.kind, i.ref, str(i.score), str(i.maximum), str(i.level))
        for result in evaluation.results if not result.carried_over for i in result.inputs
    )
    return hashlib.sha256(repr((mapping_id, marks)).encode()).hexdigest()


def marks_digest(specs: Sequence[SourceSpec], marks: Mapping[tuple[str, str], Mark],
                 mapping_id: int | None) -> str:
    """`inputs_digest` of a first-attempt evaluation (nothing carried over), straight from the
    marks: `specs` are the mapped sources of every LO, in any order (the fast path asks this
    before it builds any result; property-tested equal)."""
    parts = sorted(_part(spec, marks.get(spec.key)) for spec in specs)
    return hashlib.sha256(repr((mapping_id, parts)).encode()).hexdigest()


def _part(spec: SourceSpec, mark: Mark | None) -> tuple[str, str, str, str, str]:
    """What the digest reads of one source."""
    if mark is None:
        return (spec.kind, spec.ref, "None", "None", "None")
    return (spec.kind, spec.ref, str(mark.score), str(mark.maximum), str(mark.level))


class MarksDigest:
    """`marks_digest` for many learners under one mapping: the sources sorted once, and each
    source's part written once per mark (object) while it is kept (`forget` drops them; a kept
    entry holds its mark, so its id is never reused meanwhile).

    The parts come out sorted without sorting them: sources sorted by key give parts in the
    order of their first two fields, and two sources with one key give equal parts.
    """

    def __init__(self, specs: Sequence[SourceSpec], mapping_id: int | None) -> None:
        self._specs = [(spec, spec.key, repr(_part(spec, None)))
                       for spec in sorted(specs, key=lambda spec: spec.key)]
        self._opening = f"({mapping_id!r}, ["
        self._parts: dict[int, tuple[Mark, str]] = {}

    def forget(self) -> None:
        self._parts.clear()

    def __call__(self, marks: Mapping[tuple[str, str], Mark]) -> str:
        kept = self._parts
        parts = []
        for spec, key, unmarked in self._specs:
            mark = marks.get(key)
            if mark is None:
                parts.append(unmarked)
                continue
            entry = kept.get(id(mark))
            if entry is None or entry[0] is not mark:
                entry = kept[id(mark)] = (mark, repr(_part(spec, mark)))
            parts.append(entry[1])
        text = f"{self._opening}{', '.join(parts)}])"
        return hashlib.sha256(text.encode()).hexdigest()


# --- appending and sealing ---------------------------------------------------------------------

def _locked_head(db: Session, platform_id: int) -> EvidenceHead:
    query = (select(EvidenceHead).where(EvidenceHead.platform_id == platform_id)
             .with_for_update().execution_options(populate_existing=True))
    head = db.execute(query).scalar()
    if head is None:
        head = EvidenceHead(platform_id=platform_id, seq=0, last_hash=GENESIS_HASH)
        try:
            with db.begin_nested():
                db.add(head)
        except IntegrityError:
            head = db.execute(query).scalar_one()
    return head


def append_evidence(db: Session, *, platform_id: int, event: str, payload: dict,
                    decision_id: int | None = None, offering_id: int | None = None,
                    person_id: int | None = None) -> EvidenceRecord:
    """Append one record to the platform's chain; the locked head row keeps it from forking.
    The chain is sealed (a signed checkpoint) when the transaction commits."""
    head = _locked_head(db, platform_id)
    text = canonical_json({"event": event, **payload})
    content = content_hash(text)
    seq = head.seq + 1
    digest = link_hash(head.last_hash, seq, body_hash(event, person_id, offering_id, content))
    record = EvidenceRecord(platform_id=platform_id, seq=seq, decision_id=decision_id,
                            offering_id=offering_id, person_id=person_id, event=event,
                            payload=text, content_hash=content, prev_hash=head.last_hash,
                            hash=digest)
    head.seq = seq
    head.last_hash = digest
    db.add(record)
    db.flush()
    db.info.setdefault(UNSEALED, set()).add(platform_id)
    return record


def _signing_key(db: Session, settings: Settings, platform: Platform) -> jwk.JWK:
    """The key that signs this platform's checkpoints: its institution's Ed25519 badge key."""
    return signing_jwk(db, settings, CHECKPOINT_KEY_PURPOSE,
                       institution_id=platform.institution_id)


def _institution_of(db: Session, settings: Settings, platform: Platform | None
                    ) -> dict[str, str | None]:
    """Who the checkpoint speaks for: the registration's institution (its row)."""
    row = db.get(Institution, platform.institution_id) if platform is not None else None
    if row is None:
        return {"name": settings.issuer_name, "url": settings.issuer_url}
    return {"name": row.name, "url": row.url}


def _last_checkpoint(db: Session, platform_id: int) -> EvidenceCheckpoint | None:
    return db.scalar(select(EvidenceCheckpoint).where(EvidenceCheckpoint.platform_id ==
                                                      platform_id)
                     .order_by(EvidenceCheckpoint.number.desc()).limit(1))


def seal(db: Session, settings: Settings, platform_id: int, reason: str, *,
         always: bool = False) -> EvidenceCheckpoint | None:
    """Sign the chain head of one platform; None when the last checkpoint already covers it
    (unless `always`: the daily checkpoint anchors time even when nothing changed)."""
    head = _locked_head(db, platform_id)
    last = _last_checkpoint(db, platform_id)
    if last is not None and last.seq == head.seq and not always:
        return None
    if last is None and head.seq == 0 and not always:
        return None
    platform = db.get(Platform, platform_id)
    if platform is None:
        raise NotFound(f"No platform {platform_id}.")
    key = _signing_key(db, settings, platform)
    kid = str(key.get("kid"))
    now = utcnow()
    statement = canonical_json({
        "type": CHECKPOINT_TYPE, "version": 1,
        "chain": {"platform_id": platform.id, "issuer": platform.issuer,
                  "client_id": platform.client_id},
        "institution": _institution_of(db, settings, platform),
        "number": (last.number if last else 0) + 1, "seq": head.seq, "head": head.last_hash,
        "previous": last.statement_hash if last else GENESIS_HASH,
        "at": now, "reason": reason, "kid": kid,
    })
    token = jws.JWS(statement.encode("utf-8"))
    token.add_signature(key, alg="EdDSA",
                        protected=json.dumps({"alg": "EdDSA", "kid": kid}))
    checkpoint = EvidenceCheckpoint(
        platform_id=platform_id, number=(last.number if last else 0) + 1, seq=head.seq,
        head_hash=head.last_hash, reason=reason, kid=kid, statement=statement,
        statement_hash=statement_hash(statement), jws=token.serialize(compact=True),
        created_at=now)
    db.add(checkpoint)
    db.flush()
    return checkpoint


def chain_platforms(db: Session) -> list[int]:
    """Every platform that has an evidence chain."""
    return sorted(set(db.scalars(select(EvidenceHead.platform_id))) |
                  set(db.scalars(select(EvidenceRecord.platform_id).distinct())))


def seal_all(db: Session, settings: Settings, reason: str, *, always: bool = False) -> int:
    """Checkpoint every chain (the daily job); how many checkpoints were written."""
    return sum(seal(db, settings, pid, reason, always=always) is not None
               for pid in chain_platforms(db))


@event.listens_for(Session, "before_commit")
def _seal_on_commit(db: Session) -> None:
    if db.in_nested_transaction():
        return  # a savepoint: the outer commit seals
    pending = db.info.pop(UNSEALED, None)
    if not pending:
        return
    settings = db.info.get("settings")
    if settings is None:
        log.warning("evidence appended by a session without settings: platforms %s stay "
                    "unsealed until the next checkpoint", sorted(pending))
        return
    for platform_id in sorted(pending):
        seal(db, settings, platform_id, "commit")


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(db: Session) -> None:
    if not db.in_transaction():
        db.info.pop(UNSEALED, None)


# --- verification ------------------------------------------------------------------------------

class SignatureChecker:
    """Checks checkpoint signatures against the keys this installation holds.

    A key row alone is not trusted (whoever writes the database could add one): the key must be
    a badge Ed25519 key whose private part this installation holds and matches. A key file
    (`key_storage = "file"`) is held when it can be read from data_dir; a database-stored key
    (`"database"`) when its private part is sealed and opens with this installation's
    encryption key (`settings`): a private key stored in plain text proves nothing, since
    whoever writes the database can write that too."""

    def __init__(self, db: Session, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._keys: dict[str, tuple[jwk.JWK | None, str | None]] = {}

    def key(self, kid: str) -> tuple[jwk.JWK | None, str | None]:
        if kid not in self._keys:
            self._keys[kid] = self._load(kid)
        return self._keys[kid]

    def _load(self, kid: str) -> tuple[jwk.JWK | None, str | None]:
        row: ToolKey | None = find_public_key(self.db, kid)
        if row is None or row.purpose != CHECKPOINT_KEY_PURPOSE:
            return None, f"it is signed by key {kid!r}, which is not an institution badge key"
        public = jwk.JWK(**row.public_jwk)
        if row.private_pem and not is_sealed(row.private_pem):
            return None, f"it is signed by key {kid!r}, whose private part is stored in the " \
                         "database without this installation's seal"
        try:
            private = private_jwk(row, self.settings)
        except (OSError, ValueError, SecretKeyMismatch) as exc:
            return None, f"it is signed by key {kid!r}, whose private part this installation " \
                         f"does not hold ({type(exc).__name__})"
        if private.thumbprint() != public.thumbprint():
            return None, f"key {kid!r} in the database does not match the key file"
        return public, None

    def __call__(self, checkpoint: Checkpoint) -> str | None:
        public, reason = self.key(checkpoint.kid)
        if public is None:
            return reason
        return jws_problem(checkpoint.jws, checkpoint.statement, checkpoint.kid, public)


def jws_problem(token: str, statement: str, kid: str, public: jwk.JWK) -> str | None:
    """Why the compact JWS does not sign `statement` with `public`, or None."""
    try:
        parsed = jws.JWS()
        parsed.deserialize(token)
        header = parsed.jose_header
        if header.get("alg") != "EdDSA" or header.get("kid") != kid:
            return "its signature header names another algorithm or key"
        parsed.verify(public, alg="EdDSA")
    except (JWException, ValueError, TypeError):
        return "its signature does not verify with the institution's key"
    if parsed.payload != statement.encode("utf-8"):
        return "its signature covers another statement"
    return None


def _links(db: Session, platform_id: int, low: int | None = None,
           high: int | None = None) -> Iterator[Link]:
    query = (select(EvidenceRecord.id, EvidenceRecord.seq, EvidenceRecord.prev_hash,
                    EvidenceRecord.hash, EvidenceRecord.event, EvidenceRecord.person_id,
                    EvidenceRecord.offering_id, EvidenceRecord.content_hash,
                    EvidenceRecord.payload, EvidenceRecord.purged_by)
             .where(EvidenceRecord.platform_id == platform_id))
    if low is not None:
        query = query.where(EvidenceRecord.seq >= low)
    if high is not None:
        query = query.where(EvidenceRecord.seq <= high)
    for row in db.execute(query.order_by(EvidenceRecord.seq).execution_options(yield_per=2000)):
        # the ten columns above, in Link's order (SQLAlchemy types a row of so many columns as
        # open-ended; the slice gives the checker the ten it has)
        yield Link(*row[:10])


def _checkpoints(db: Session, platform_id: int) -> list[Checkpoint]:
    return [Checkpoint(cp.id, cp.number, cp.seq, cp.head_hash, cp.statement, cp.statement_hash,
                       cp.jws, cp.kid)
            for cp in db.scalars(select(EvidenceCheckpoint)
                                 .where(EvidenceCheckpoint.platform_id == platform_id)
                                 .order_by(EvidenceCheckpoint.number))]


@dataclass(frozen=True)
class ChainResult:
    platform_id: int
    report: ChainReport

    @property
    def problem(self) -> Problem | None:
        return self.report.problem

    def __str__(self) -> str:
        return f"platform {self.platform_id}: {self.report.problem}"


def verify_archive(db: Session, settings: Settings, platform_ids: Iterable[int] | None = None,
                   ) -> list[ChainResult]:
    """Verify each chain (all, or those of `platform_ids`): hashes, checkpoints, signatures
    (`settings` open the installation's sealed keys)."""
    checker = SignatureChecker(db, settings)
    results = []
    heads = {h.platform_id: h for h in db.scalars(select(EvidenceHead))}
    for platform_id in (sorted(platform_ids) if platform_ids is not None
                        else chain_platforms(db)):
        report = check_chain(_links(db, platform_id), _checkpoints(db, platform_id), checker)
        if platform_id in db.info.get(UNSEALED, ()) and report.problem is not None and \
                report.problem.what == domain_evidence.UNSEALED:
            report.problem = None  # appended in this transaction: sealed when it commits
        head = heads.get(platform_id)
        if report.problem is None and (head is None or (head.seq, head.last_hash) !=
                                       (report.end_seq, report.end_hash)):
            report.problem = Problem("record", 0, report.end_seq,
                                     "the chain ends before its recorded head: records were "
                                     "removed at the end")
        results.append(ChainResult(platform_id, report))
    return results


def first_problem(results: list[ChainResult]) -> ChainResult | None:
    return next((r for r in results if r.problem is not None), None)


def stale_chains(db: Session, days: int = 2) -> list[tuple[int, int]]:
    """(platform id, age in days) of chains whose newest checkpoint is older than `days`: the
    daily job has not run (a warning; every record may still be sealed)."""
    now = utcnow()
    newest = db.execute(select(EvidenceCheckpoint.platform_id,
                               func.max(EvidenceCheckpoint.created_at))
                        .group_by(EvidenceCheckpoint.platform_id)).all()
    return [(pid, (now - _aware(at)).days) for pid, at in newest
            if at is not None and now - _aware(at) > timedelta(days=days)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def verify_chain(db: Session, settings: Settings) -> ChainResult | None:
    """The first chain that does not verify (with its problem), or None when all do."""
    return first_problem(verify_archive(db, settings))


# --- the checkpoint file -----------------------------------------------------------------------

def _public_keys(db: Session, kids: Iterable[str]) -> dict[str, dict]:
    keys = {}
    for kid in sorted(set(kids)):
        row = find_public_key(db, kid)
        if row is not None:
            keys[kid] = dict(row.public_jwk)
    return keys


def export_checkpoints(db: Session, settings: Settings,
                       platform_ids: Iterable[int] | None = None) -> dict:
    """Every chain's signed checkpoints and the public keys that verify them (small: a few
    hundred bytes per checkpoint, no personal data)."""
    chains = []
    kids: list[str] = []
    for platform_id in (sorted(platform_ids) if platform_ids is not None
                        else chain_platforms(db)):
        platform = db.get(Platform, platform_id)
        rows = list(db.scalars(select(EvidenceCheckpoint)
                               .where(EvidenceCheckpoint.platform_id == platform_id)
                               .order_by(EvidenceCheckpoint.number)))
        kids += [cp.kid for cp in rows]
        chains.append({
            "platform_id": platform_id,
            "issuer": platform.issuer if platform else None,
            "client_id": platform.client_id if platform else None,
            "checkpoints": [{"number": cp.number, "seq": cp.seq, "head": cp.head_hash,
                             "statement": cp.statement, "jws": cp.jws} for cp in rows],
        })
    data = {"type": CHECKPOINTS_FILE_TYPE, "version": 1, "tool": settings.base_url,
            "institution": {"name": settings.issuer_name, "url": settings.issuer_url},
            "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
            "keys": _public_keys(db, kids), "chains": chains}
    data["digest"] = checkpoints_digest(data)
    return data


def checkpoints_digest(data: dict) -> str:
    """SHA-256 over the file's chains and keys (what a timestamp authority stamps)."""
    return hashlib.sha256(canonical_json({"keys": data.get("keys"),
                                          "chains": data.get("chains")}).encode()).hexdigest()


def verify_against(db: Session, data: object) -> str | None:
    """Why the database no longer holds what the exported checkpoint file records, or None.

    Every exported checkpoint must verify with the file's keys, those keys must be the ones the
    database names, and the database must hold the same checkpoint (so, with `verify_archive`,
    the same records up to it)."""
    if not isinstance(data, dict) or data.get("type") != CHECKPOINTS_FILE_TYPE or \
            not isinstance(data.get("chains"), list) or not isinstance(data.get("keys"), dict):
        raise BadRequest("This is not an evidence checkpoint file (lti-tool evidence checkpoint "
                         "export).")
    for kid, public in data["keys"].items():
        row = find_public_key(db, kid)
        if row is None or jwk.JWK(**row.public_jwk).thumbprint() != jwk.JWK(**public).thumbprint():
            return f"key {kid!r} of the file is not the key the database holds under that name"
    for chain in data["chains"]:
        platform_id = chain.get("platform_id")
        stored = {cp.number: cp for cp in db.scalars(
            select(EvidenceCheckpoint).where(EvidenceCheckpoint.platform_id == platform_id))}
        for item in chain.get("checkpoints", []):
            label = f"platform {platform_id}, checkpoint #{item.get('number')} (seq " \
                    f"{item.get('seq')})"
            statement = str(item.get("statement", ""))
            try:
                kid = json.loads(statement)["kid"]
                public = jwk.JWK(**data["keys"][kid])
            except (ValueError, KeyError, TypeError):
                return f"{label}: the file names no key for it"
            problem = jws_problem(str(item.get("jws", "")), statement, kid, public)
            if problem:
                return f"{label} in the file: {problem}"
            held = stored.get(item.get("number"))
            if held is None:
                return f"{label} was exported but is missing from the database"
            if held.statement_hash != statement_hash(statement):
                return f"{label} differs in the database from the exported one"
    return None


# --- one learner's export ----------------------------------------------------------------------

def _segments(db: Session, platform_id: int, seqs: list[int]) -> list[tuple[int, int, int]]:
    """(from, to, checkpoint number) ranges: each record to the first checkpoint signing it."""
    cps = list(db.execute(select(EvidenceCheckpoint.seq, EvidenceCheckpoint.number)
                          .where(EvidenceCheckpoint.platform_id == platform_id)
                          .order_by(EvidenceCheckpoint.number)))
    ranges: list[tuple[int, int, int]] = []
    for seq in sorted(seqs):
        if ranges and seq <= ranges[-1][1]:
            continue
        cover = next(((s, n) for s, n in cps if s >= seq), None)
        if cover is None:
            continue  # not sealed yet: shown as such
        ranges.append((seq, cover[0], cover[1]))
    return ranges


def learner_evidence(db: Session, platform_id: int, person_id: int,
                     offering_id: int | None = None) -> dict:
    """The learner's records with the chain segments that prove them (own segment only)."""
    records = select(EvidenceRecord).where(EvidenceRecord.platform_id == platform_id,
                                           EvidenceRecord.person_id == person_id)
    if offering_id is not None:
        records = records.where(EvidenceRecord.offering_id == offering_id)
    own = list(db.scalars(records.order_by(EvidenceRecord.seq)))
    segments = []
    kids = []
    for low, high, number in _segments(db, platform_id, [r.seq for r in own]):
        cp = db.scalars(select(EvidenceCheckpoint).where(  # `_segments` read its number
            EvidenceCheckpoint.platform_id == platform_id, EvidenceCheckpoint.number == number)
        ).one()
        kids.append(cp.kid)
        segments.append({
            "from": low, "to": high,
            "links": [{"seq": link.seq, "prev_hash": link.prev_hash, "hash": link.hash,
                       "body": link.body()} for link in _links(db, platform_id, low, high)],
            "checkpoint": {"number": cp.number, "seq": cp.seq, "head": cp.head_hash,
                           "kid": cp.kid, "statement": cp.statement, "jws": cp.jws},
        })
    data = {
        "records": [_record_json(r) for r in own],
        "segments": segments,
        "keys": {"keys": list(_public_keys(db, kids).values())},
    }
    problem = check_export(data)
    data["chain"] = {"algorithm": ALGORITHM, "verified": problem is None, "problem": problem,
                     "platform_id": platform_id}
    return data


def _record_json(record: EvidenceRecord) -> dict:
    return {"id": record.id, "seq": record.seq, "event": record.event,
            "person_id": record.person_id, "offering_id": record.offering_id,
            "content_hash": record.content_hash, "prev_hash": record.prev_hash,
            "hash": record.hash, "created_at": record.created_at.isoformat(),
            "canonical": record.payload,
            "payload": json.loads(record.payload) if record.payload is not None else None,
            "purged_at": record.purged_at.isoformat() if record.purged_at else None,
            "purged_by": record.purged_by}


def check_export(data: dict, keys: dict | None = None) -> str | None:
    """Verify an evidence export as a verifier without the database would: each record's
    content and body, each segment's links up to its checkpoint's signed head, each signature
    with the institution's public key (`keys`, a JWKS; default: the file's own)."""
    try:
        jwks = {k["kid"]: jwk.JWK(**k) for k in (keys or data["keys"])["keys"]}
        by_seq = {}
        for link in (link for segment in data["segments"] for link in segment["links"]):
            by_seq[link["seq"]] = link
        for record in data["records"]:
            seq = record["seq"]
            if record["canonical"] is not None and \
                    content_hash(record["canonical"]) != record["content_hash"]:
                return f"record seq {seq}: its payload does not match its content hash"
            body = body_hash(record["event"], record["person_id"], record["offering_id"],
                             record["content_hash"])
            link = by_seq.get(seq)
            if link is None:
                return f"record seq {seq}: no signed checkpoint covers it yet"
            if (link["body"], link["hash"], link["prev_hash"]) != \
                    (body, record["hash"], record["prev_hash"]):
                return f"record seq {seq}: it differs from its link in the chain"
        for segment in data["segments"]:
            previous = None
            for link in segment["links"]:
                if previous is not None and (link["seq"] != previous["seq"] + 1 or
                                             link["prev_hash"] != previous["hash"]):
                    return f"segment {segment['from']}-{segment['to']}: broken at seq " \
                           f"{link['seq']}"
                if link_hash(link["prev_hash"], link["seq"], link["body"]) != link["hash"]:
                    return f"segment {segment['from']}-{segment['to']}: link seq " \
                           f"{link['seq']} does not match its hash"
                previous = link
            cp = segment["checkpoint"]
            statement = json.loads(cp["statement"])
            if previous is None or (statement["seq"], statement["head"]) != \
                    (previous["seq"], previous["hash"]):
                return f"segment {segment['from']}-{segment['to']}: it does not end at the " \
                       f"head checkpoint #{cp['number']} signs"
            public = jwks.get(statement["kid"])
            if public is None:
                return f"checkpoint #{cp['number']}: no public key {statement['kid']!r}"
            problem = jws_problem(cp["jws"], cp["statement"], statement["kid"], public)
            if problem:
                return f"checkpoint #{cp['number']}: {problem}"
    except (KeyError, TypeError, ValueError) as exc:
        return f"the file is malformed ({type(exc).__name__}: {exc})"
    return None


def export_evidence(db: Session, platform_id: int, person_id: int,
                    offering_id: int | None = None) -> dict:
    """One learner's decisions and archived records as JSON-ready data (Art. 9/4)."""
    person = db.get(Person, person_id)
    if person is None or person.platform_id != platform_id:
        raise NotFound("No such learner on this platform.")
    query = select(Decision).where(Decision.platform_id == platform_id,
                                   Decision.person_id == person_id)
    if offering_id is not None:
        query = query.where(Decision.offering_id == offering_id)
    return {
        "type": EXPORT_TYPE, "version": 2,
        "person": {"id": person.id, "sub": person.sub, "name": person.name},
        "decisions": [decision_json(d) for d in db.scalars(query.order_by(Decision.id))],
        **learner_evidence(db, platform_id, person_id, offering_id),
        "rule_version": RULE_VERSION,
    }


def decision_json(decision: Decision) -> dict:
    return {
        "id": decision.id, "offering_id": decision.offering_id, "status": decision.status,
        "reevaluations_used": decision.reevaluations_used, "mapping_id": decision.mapping_id,
        "share_attained": str(decision.share_attained), "passed_via": decision.passed_via,
        "passed_at": _iso(decision.passed_at), "decided_at": _iso(decision.decided_at),
        "outcomes": decision.outcomes,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def record_count(db: Session) -> int:
    return db.scalar(select(func.count(EvidenceRecord.id))) or 0
