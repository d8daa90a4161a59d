"""Evidence archive: canonical JSON and a SHA-256 hash chain (directive Art. 9/4).

Each record's hash covers the previous record's hash and the record's canonical payload, so
changing, removing or reordering any archived record breaks every hash after it, and
`first_broken` names the first record that no longer fits.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, `Decimal` as a string (never a
float, so 70 and 70.0000 stay what they were), aware datetimes as ISO 8601 in UTC with `Z`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
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


def chain_hash(prev_hash: str, canonical: str) -> str:
    """SHA-256 over the previous hash and this record's canonical payload."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical.encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True)
class Link:
    """What verification needs of a stored record."""

    id: int
    seq: int
    prev_hash: str
    hash: str
    payload: str  # canonical JSON as stored


@dataclass(frozen=True)
class Break:
    id: int
    seq: int
    reason: str


def first_broken(links: Iterable[Link]) -> Break | None:
    """Walk one chain in `seq` order; the first record that does not fit, or None."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for link in links:
        if link.seq != expected_seq:
            return Break(link.id, link.seq,
                         f"sequence jumps from {expected_seq - 1} to {link.seq}: "
                         "a record was removed")
        if link.prev_hash != expected_prev:
            return Break(link.id, link.seq,
                         "its previous-hash does not match the record before it")
        try:
            parsed = json.loads(link.payload)
        except ValueError:
            return Break(link.id, link.seq, "its payload is not valid JSON")
        if canonical_json(parsed) != link.payload:
            return Break(link.id, link.seq, "its payload is not in canonical form (edited)")
        if chain_hash(link.prev_hash, link.payload) != link.hash:
            return Break(link.id, link.seq, "its content does not match its hash (edited)")
        expected_prev = link.hash
        expected_seq += 1
    return None
