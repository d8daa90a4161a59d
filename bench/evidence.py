"""Benchmark: verifying the evidence archive, and what one learner's export costs.

    python bench/evidence.py [--records 100000] [--per-checkpoint 500] [--quick]

1. A chain of N records (payloads shaped like the evaluation's decision records, ~1.4 KB)
   with a signed checkpoint (real Ed25519, the badge key) every `per-checkpoint` records, in a
   SQLite file (or the PostgreSQL that LTI_TOOL_BENCH_DATABASE_URL names: its tables are
   dropped and re-created).
2. `verify_archive` over it: records per second, against two references measured in the same
   run over the same rows: reading the rows only (the same SELECT, no checks), and bare
   hashlib over the same bytes (the three SHA-256 per record verification needs, rows already
   in memory). The ratios say how much of verification is I/O and how much is ours.
3. One learner's evidence export on a small platform, alone and with the N-record chain of
   another platform in the same database: it verifies only its own segments, so the second
   should not cost more (the issue measured +0.78 s per request for 100,000 foreign records).

Prints tables; never fails on timings.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select

import lti_tool.store.models  # noqa: F401
from lti_tool.domain.evidence import (
    GENESIS_HASH,
    body_hash,
    canonical_json,
    content_hash,
    link_hash,
)
from lti_tool.grades.evidence import (
    append_evidence,
    export_evidence,
    seal,
    verify_archive,
)
from lti_tool.runtime import Runtime
from lti_tool.settings import load_settings
from lti_tool.store.db import Base, make_engine, make_session_factory
from lti_tool.store.models.core import Person, Platform
from lti_tool.store.models.evaluation import EvidenceHead, EvidenceRecord

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def payload(n: int) -> dict:
    outcomes = [{"code": f"LO{i}", "level": "proficient", "percent": f"{70 + (n + i) % 30}.0000",
                 "status": "attained", "inputs": [
                     {"kind": "grade_item", "ref": str(100 + i * 5 + j), "score": str(j + n % 7),
                      "maximum": "10", "weight": "1"} for j in range(3)]}
                for i in range(1, 4)]
    return {"event": "failed", "from": "in_progress", "to": "failed", "trigger": "close",
            "decision_id": n, "platform_id": 1, "offering_id": 1 + n % 50, "person_id": n,
            "mc_version_id": 1, "attempt": 1, "reevaluations_used": 0,
            "mapping": {"id": 1, "version": 1, "attempt_no": 1}, "rule_version": "1",
            "outcomes": outcomes, "share_attained": "0.6667",
            "actor": {"person_id": None, "label": "scheduler"}, "at": AT, "details": {}}


def build_chain(runtime: Runtime, platform_id: int, records: int, per_checkpoint: int) -> None:
    """Insert the chain in bulk (hashes computed as append_evidence does), sealing every
    `per_checkpoint` records with the real signing code."""
    prev, seq = GENESIS_HASH, 0
    with runtime.sessions() as db:
        db.add(EvidenceHead(platform_id=platform_id, seq=0, last_hash=GENESIS_HASH))
        db.commit()
    while seq < records:
        rows = []
        for _ in range(min(per_checkpoint, records - seq)):
            seq += 1
            text = canonical_json(payload(seq))
            content = content_hash(text)
            digest = link_hash(prev, seq, body_hash("failed", None, None, content))
            rows.append({"platform_id": platform_id, "seq": seq, "event": "failed",
                         "payload": text, "content_hash": content, "prev_hash": prev,
                         "hash": digest, "created_at": AT})
            prev = digest
        with runtime.sessions() as db:
            db.execute(insert(EvidenceRecord), rows)
            head = db.get(EvidenceHead, platform_id)
            head.seq, head.last_hash = seq, prev
            seal(db, runtime.settings, platform_id, "evaluation")
            db.commit()


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def read_only(runtime: Runtime, platform_id: int) -> int:
    with runtime.sessions() as db:
        count = 0
        for _row in db.execute(
                select(EvidenceRecord.id, EvidenceRecord.seq, EvidenceRecord.prev_hash,
                       EvidenceRecord.hash, EvidenceRecord.event, EvidenceRecord.person_id,
                       EvidenceRecord.offering_id, EvidenceRecord.content_hash,
                       EvidenceRecord.payload, EvidenceRecord.purged_by)
                .where(EvidenceRecord.platform_id == platform_id)
                .order_by(EvidenceRecord.seq).execution_options(yield_per=2000)):
            count += 1
        return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-checkpoint", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="10,000 records, one repeat")
    args = parser.parse_args()
    records = 10_000 if args.quick else args.records
    repeat = 1 if args.quick else 3
    tmp = Path(tempfile.mkdtemp(prefix="bench-evidence-"))
    url = os.environ.get("LTI_TOOL_BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    settings = load_settings(overrides={"database_url": url, "data_dir": str(tmp / "instance"),
                                        "testing": True}, environ={})
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    runtime = Runtime(settings=settings, engine=engine, sessions=make_session_factory(engine))
    with runtime.sessions() as db:
        big = Platform(issuer="https://big.example.edu", client_id="big",
                       auth_login_url="https://big.example.edu/a",
                       auth_token_url="https://big.example.edu/t")
        small = Platform(issuer="https://small.example.edu", client_id="small",
                         auth_login_url="https://small.example.edu/a",
                         auth_token_url="https://small.example.edu/t")
        db.add_all([big, small])
        db.flush()
        learner = Person(platform_id=small.id, sub="learner", name="Learner")
        db.add(learner)
        db.flush()
        for n in range(20):  # a learner with 20 records among 200 of a small platform
            for other in range(9):
                append_evidence(db, platform_id=small.id, event="failed",
                                payload={"n": n, "o": other})
            append_evidence(db, platform_id=small.id, event="failed", payload=payload(n),
                            person_id=learner.id)
            db.commit()
        big_id, small_id, learner_id = big.id, small.id, learner.id

    def export() -> dict:
        with runtime.sessions() as db:
            return export_evidence(db, small_id, learner_id)

    alone, data = timed(export, repeat * 3)
    assert data["chain"]["verified"], data["chain"]

    start = time.perf_counter()
    build_chain(runtime, big_id, records, args.per_checkpoint)
    built = time.perf_counter() - start

    def verify() -> list:
        with runtime.sessions() as db:
            return verify_archive(db, runtime.settings, [big_id])

    verify_s, results = timed(verify, repeat)
    assert results[0].problem is None, results[0].problem
    read_s, count = timed(lambda: read_only(runtime, big_id), repeat)
    assert count == records
    with runtime.sessions() as db:
        rows = db.execute(select(EvidenceRecord.seq, EvidenceRecord.prev_hash,
                                 EvidenceRecord.payload, EvidenceRecord.event)
                          .where(EvidenceRecord.platform_id == big_id)).all()

    def bare() -> None:
        for seq, prev, text, event in rows:
            content = hashlib.sha256(text.encode()).hexdigest()
            body = hashlib.sha256(f"{event}\n\n\n{content}".encode()).hexdigest()
            hashlib.sha256(f"lti-tool-evidence/2\n{prev}\n{seq}\n{body}".encode()).hexdigest()

    bare_s, _ = timed(bare, repeat)
    with_big, data = timed(export, repeat * 3)
    assert data["chain"]["verified"], data["chain"]
    checkpoints = results[0].report.checkpoints

    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    size = sum(len(r[2]) for r in rows) / len(rows)
    print(f"\nEvidence archive on {backend}: {records:,} records (~{size:,.0f} bytes of payload "
          f"each), {checkpoints:,} signed checkpoints; built in {built:.1f} s; median of "
          f"{repeat}\n")
    print(f"{'what':<52} {'seconds':>9} {'records/s':>12} {'verify / this':>14}")
    for name, seconds in (("verify_archive (read, 3 SHA-256, signatures)", verify_s),
                          ("reference: the same SELECT, rows read only", read_s),
                          ("reference: bare hashlib over the same bytes", bare_s)):
        print(f"{name:<52} {seconds:>9.3f} {records / seconds:>12,.0f} "
              f"{verify_s / seconds:>14.2f}")
    print(f"\nOne learner's export (20 records among 200, own platform), median of {repeat * 3}:")
    print(f"{'':<52} {'ms':>9}")
    print(f"{'alone in the database':<52} {alone * 1000:>9.1f}")
    print(f"{f'with {records:,} records of another platform':<52} {with_big * 1000:>9.1f}")
    engine.dispose()


if __name__ == "__main__":
    main()
