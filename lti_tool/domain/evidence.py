"""Evidence archive: canonical JSON, a SHA-256 hash chain and signed checkpoints (Art. 9/4).

Each record's link hash covers the previous record's hash, its position (`seq`), its event,
the learner and offering it belongs to, and the SHA-256 of its canonical payload
(`content_hash`). Changing, removing or reordering any record breaks every hash after it, and
`check_chain` names the first record that no longer fits. A retention purge removes a payload
but keeps its `content_hash`, so the chain still verifies and the purge record says why.

Checkpoints sign the chain head (number, seq, head hash, previous checkpoint's hash) with the
institution's Ed25519 key. Anyone who can write the database can recompute the hashes, but not
the signatures: the first checkpoint whose signed head no longer matches names the rewrite, and
a chain whose end is not covered by a checkpoint is reported too. This module is pure: the
signature check is passed in.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, `Decimal` as a string (never a
float, so 70 and 70.0000 stay what they were), aware datetimes as ISO 8601 in UTC with `Z`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

GENESIS_HASH = "0" * 64


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("evidence datetimes must be timezone-aware")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot archive a {type(value).__name__} as evidence")


def canonical_json(payload: Any) -> str:
    """The one text form of `payload` that gets hashed."""
    return json.dumps(payload, default=_default, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


LINK_PREFIX = "lti-tool-evidence/2"
CHECKPOINT_TYPE = "lti-tool/evidence-checkpoint"
UNSEALED = "unsealed"


def content_hash(canonical: str) -> str:
    """SHA-256 of a record's canonical payload."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def body_hash(event: str, person_id: int | None, offering_id: int | None,
              content: str) -> str:
    """What one record contributes to its link, without its payload (exports show only this for
    other learners' records, so a segment verifies without revealing them)."""
    text = f"{event}\n{'' if person_id is None else person_id}\n" \
           f"{'' if offering_id is None else offering_id}\n{content}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def link_hash(prev_hash: str, seq: int, body: str) -> str:
    """The chained hash of record `seq`."""
    return hashlib.sha256(f"{LINK_PREFIX}\n{prev_hash}\n{seq}\n{body}".encode("ascii")).hexdigest()


def statement_hash(statement: str) -> str:
    return hashlib.sha256(statement.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Link:
    """What verification needs of a stored record (`payload` None once purged)."""

    id: int
    seq: int
    prev_hash: str
    hash: str
    event: str
    person_id: int | None
    offering_id: int | None
    content_hash: str
    payload: str | None
    purged_by: int | None = None

    def body(self) -> str:
        return body_hash(self.event, self.person_id, self.offering_id, self.content_hash)


@dataclass(frozen=True)
class Checkpoint:
    """What verification needs of a stored checkpoint."""

    id: int
    number: int
    seq: int
    head_hash: str
    statement: str
    statement_hash: str
    jws: str
    kid: str


@dataclass(frozen=True)
class Problem:
    """The first thing that does not fit: a record (`what` = "record") or a checkpoint."""

    what: str  # record | checkpoint | unsealed
    id: int
    seq: int
    reason: str

    def __str__(self) -> str:
        if self.what == "record":
            return f"evidence record {self.id} (seq {self.seq}): {self.reason}"
        if self.what == UNSEALED:
            return f"the end of the chain: {self.reason}"
        return f"checkpoint #{self.id} (seq {self.seq}): {self.reason}"


@dataclass
class Purge:
    """A purge record as read back: which seqs it removed, when and why."""

    seq: int
    at: str
    reason: str
    kinds: dict[str, Any]
    ranges: list[tuple[int, int]]

    def covers(self, seq: int) -> bool:
        return any(low <= seq <= high for low, high in self.ranges)


@dataclass
class ChainReport:
    records: int = 0
    end_seq: int = 0
    end_hash: str = GENESIS_HASH
    checkpoints: int = 0
    purged: int = 0
    purges: list[Purge] = field(default_factory=list)
    problem: Problem | None = None


SignatureCheck = Callable[[Checkpoint], str | None]
"""Checks a checkpoint's JWS against its statement and key; returns a reason or None."""


def compact_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def _check_checkpoints(checkpoints: list[Checkpoint],
                       check_signature: SignatureCheck
                       ) -> tuple[Problem | None, dict[int, list[Checkpoint]]]:
    """Numbering, previous-hash links, statements and signatures; seq -> checkpoints."""
    previous = GENESIS_HASH
    by_seq: dict[int, list[Checkpoint]] = {}
    last_seq = 0
    for expected, cp in enumerate(checkpoints, start=1):
        if cp.number != expected:
            return Problem("checkpoint", cp.number, cp.seq,
                           f"checkpoint #{expected} is missing (#{cp.number} follows "
                           f"#{expected - 1})"), by_seq
        if statement_hash(cp.statement) != cp.statement_hash:
            return Problem("checkpoint", cp.number, cp.seq,
                           "its statement does not match its hash (edited)"), by_seq
        try:
            data = json.loads(cp.statement)
        except ValueError:
            return Problem("checkpoint", cp.number, cp.seq, "its statement is not JSON"), by_seq
        if not isinstance(data, dict) or data.get("type") != CHECKPOINT_TYPE or (
                data.get("number"), data.get("seq"), data.get("head"), data.get("kid")) != (
                cp.number, cp.seq, cp.head_hash, cp.kid):
            return Problem("checkpoint", cp.number, cp.seq,
                           "its stored number, seq, head or key differ from what it signs "
                           "(edited)"), by_seq
        if data.get("previous") != previous:
            return Problem("checkpoint", cp.number, cp.seq,
                           "it does not name the checkpoint before it (a checkpoint was "
                           "removed or replaced)"), by_seq
        if cp.seq < last_seq:
            return Problem("checkpoint", cp.number, cp.seq,
                           f"its seq goes back from {last_seq}"), by_seq
        reason = check_signature(cp)
        if reason is not None:
            return Problem("checkpoint", cp.number, cp.seq, reason), by_seq
        by_seq.setdefault(cp.seq, []).append(cp)
        previous, last_seq = cp.statement_hash, cp.seq
    return None, by_seq


def check_chain(links: Iterable[Link], checkpoints: list[Checkpoint],
                check_signature: SignatureCheck) -> ChainReport:
    """Verify one chain (links in `seq` order, checkpoints in `number` order).

    Reports the first problem in chain order: a record that does not fit its neighbours, a
    checkpoint that is missing, edited or badly signed, a signed head the chain no longer
    reaches (hashes recomputed without the key), a payload removed without a purge record, or
    records at the end that no checkpoint covers.
    """
    report = ChainReport(checkpoints=len(checkpoints))
    problem, by_seq = _check_checkpoints(checkpoints, check_signature)
    bad_checkpoint_seq = problem.seq if problem else None
    expected_prev = GENESIS_HASH
    expected_seq = 1
    last_sealed = 0  # seq of the latest checkpoint matched so far
    claims: list[Link] = []
    for zero in by_seq.get(0, []):
        if zero.head_hash != GENESIS_HASH:
            report.problem = Problem("checkpoint", zero.number, 0, "its head is not the "
                                     "empty chain's")
            return report
    for link in links:
        if bad_checkpoint_seq is not None and link.seq > bad_checkpoint_seq:
            break
        report.records += 1
        if link.seq != expected_seq:
            reason = (f"sequence jumps from {expected_seq - 1} to {link.seq}: a record was "
                      "removed" if link.seq > expected_seq else
                      f"sequence goes back from {expected_seq - 1} to {link.seq}: records "
                      "were reordered")
            report.problem = Problem("record", link.id, link.seq, reason)
            return report
        if link.prev_hash != expected_prev:
            report.problem = Problem("record", link.id, link.seq,
                                     "its previous-hash does not match the record before it "
                                     "(reordered or replaced)")
            return report
        if link.payload is not None:
            if content_hash(link.payload) != link.content_hash:
                report.problem = Problem("record", link.id, link.seq,
                                         "its payload does not match its content hash (edited)")
                return report
            if link.event == "purge":
                report.purges.append(_purge(link))
        elif link.purged_by is None:
            report.problem = Problem("record", link.id, link.seq,
                                     "its payload was removed without a purge record")
            return report
        else:
            claims.append(link)
        if link_hash(link.prev_hash, link.seq, link.body()) != link.hash:
            report.problem = Problem("record", link.id, link.seq,
                                     "its content does not match its hash (edited)")
            return report
        for cp in by_seq.get(link.seq, []):
            if cp.head_hash != link.hash:
                report.problem = Problem(
                    "checkpoint", cp.number, cp.seq,
                    f"the chain no longer reaches its signed head: a record between seq "
                    f"{last_sealed + 1} and {cp.seq} was changed and the hashes recomputed "
                    "(the signature cannot be recomputed without the institution's key)")
                return report
            last_sealed = cp.seq
        expected_prev = link.hash
        expected_seq += 1
        report.end_seq, report.end_hash = link.seq, link.hash
    if problem is not None:
        report.problem = problem
        return report
    beyond = [seq for seq in by_seq if seq > report.end_seq]
    if beyond:
        cp = by_seq[min(beyond)][0]
        report.problem = Problem("checkpoint", cp.number, cp.seq,
                                 f"it signs seq {cp.seq} but the chain ends at seq "
                                 f"{report.end_seq}: records were removed at the end")
        return report
    for link in claims:
        purge = next((p for p in report.purges if p.seq == link.purged_by), None)
        if purge is None or purge.seq <= link.seq or not purge.covers(link.seq):
            report.problem = Problem("record", link.id, link.seq,
                                     f"its payload was removed, but no purge record lists it "
                                     f"(it names seq {link.purged_by})")
            return report
    report.purged = len(claims)
    if report.end_seq > last_sealed:
        report.problem = Problem(UNSEALED, 0, last_sealed + 1,
                                 f"records seq {last_sealed + 1} to {report.end_seq} are not "
                                 "covered by a signed checkpoint")
    return report


def _purge(link: Link) -> Purge:
    data = json.loads(link.payload or "{}")
    return Purge(seq=link.seq, at=str(data.get("at", "")), reason=str(data.get("reason", "")),
                 kinds=dict(data.get("kinds", {})),
                 ranges=[(int(a), int(b)) for a, b in data.get("records", [])])
