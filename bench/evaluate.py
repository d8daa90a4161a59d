"""Benchmark: evaluation time per learner-offering pair and how it scales; incremental re-runs.

    python bench/evaluate.py [--pairs 10000,100000] [--store-pairs 10000] [--quick] [--fast-only]
                             [--store-only] [--passback] [--paths general,fast]

(--store-pairs 0 skips the store part; --fast-only runs only the fast path table; --store-only
only the store part; --passback turns grade passback on for the offerings, so every changed
decision also queues its score; --paths fast skips the general path's reference run.)

1. Pure domain (`lti_tool.domain.evaluation.evaluate_learner`): 8 LOs, 40 sources per pair
   (5 per LO), exact arithmetic; also 40 sources per LO (320 per pair) at the first size. Then
   the fast path (`compile_mapping` once, `compile_marks` + `evaluate_fast` per pair) beside
   the general one on the same marks, chunk by chunk. Every pair is a new learner whose Mark
   objects are built (untimed) from rows as the store loads them: nothing a pair computes or
   hashes is reused by a later pair except what the product also reuses across learners.
2. Store-backed (`lti_tool.grades.evaluation.evaluate_changed`): a SQLite file (or the
   PostgreSQL that LTI_TOOL_BENCH_DATABASE_URL names; its tables are dropped and re-created),
   10 course contexts x 1,000 learners, 40 gradebook items each; the full first run, an
   unchanged re-run (best of 3), then one changed mark re-evaluated by person id (it must
   touch exactly one learner) and by a full re-run (one decision changes). Run twice on the
   same seed: through the general path (`fast=False`, the reference) and the fast path; the
   script then compares what both stored (decisions, snapshots, attempts, evidence, passback
   rows). Wall time, this process's CPU time and, on a PostgreSQL on this machine, the CPU
   time of the session's server process (from /proc; "-" where it cannot be read).

The MC version is `in_review`, so passes are held rather than signed (signing is measured by
bench/issue.py). Prints tables; never fails on timings.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select

import lti_tool.store.models  # noqa: F401
from lti_tool.domain.evaluation import (
    GRADE_ITEM,
    Mark,
    Outcome,
    SourceSpec,
    compile_mapping,
    compile_marks,
    evaluate_fast,
    evaluate_learner,
    fast_all_required_attained,
)
from lti_tool.domain.rubric import PerformanceLevel, Rubric
from lti_tool.settings import load_settings
from lti_tool.store import queue_schema
from lti_tool.store.db import Base, make_engine, make_session_factory, utcnow
from lti_tool.store.models.catalogue import (
    LearningOutcome,
    MicroCredential,
    MicroCredentialVersion,
    Offering,
)
from lti_tool.store.models.core import Context, Membership, Person, Platform
from lti_tool.store.models.evaluation import Decision, MappingSource, OutcomeMapping
from lti_tool.store.models.grades import GradeItem, Score

LOS = 8
LEVELS = (("beginning", "0"), ("developing", "50"), ("proficient", "70"), ("exemplary", "85.5"))
RUBRIC = Rubric(tuple(PerformanceLevel(code, code.title(), Decimal(bound))
                      for code, bound in LEVELS), threshold="proficient")
CHUNK = 500  # learners drawn, built and timed at a time (each pair is a new learner)


def domain_case(per_lo: int, seed: int = 7) -> tuple[list, dict]:
    rng = random.Random(seed)
    outcomes = [Outcome(f"LO{n}", RUBRIC, required=n < LOS - 1) for n in range(LOS)]
    sources = {o.code: [SourceSpec(GRADE_ITEM, str(1000 * n + k), Decimal(rng.choice("123")))
                        for k in range(per_lo)] for n, o in enumerate(outcomes)}
    return outcomes, sources


def learners(sources: dict, chunk: int, seed: int = 7) -> list[list[tuple]]:
    """CHUNK learners' marks as raw rows (kind, item id, score, maximum), the way the store
    reads them; every chunk draws new learners (no mark set is evaluated twice)."""
    rng = random.Random(f"{seed}/{chunk}")
    chunk_rows = []
    for _ in range(CHUNK):
        rows = []
        for specs in sources.values():
            for spec in specs:
                if rng.random() < 0.05:
                    continue  # not marked yet
                maximum = rng.choice((10, 20, 30, 100))
                score = rng.randint(maximum * 45 // 100, maximum)
                rows.append((GRADE_ITEM, int(spec.ref), str(score), str(maximum)))
        chunk_rows.append(rows)
    return chunk_rows


def fresh_marks(chunk_rows: list[list[tuple]]) -> list[list[Mark]]:
    """Mark objects (new Decimals and ref strings) as `grades.marks.load_marks` builds them."""
    return [[Mark(kind, str(ref), score=Decimal(score), maximum=Decimal(maximum))
             for kind, ref, score, maximum in rows] for rows in chunk_rows]


def chunks(size: int, sources: dict):
    """`size` learners' Mark lists, CHUNK at a time (built before each chunk is timed)."""
    for chunk in range(0, (size + CHUNK - 1) // CHUNK):
        yield fresh_marks(learners(sources, chunk)[:size - chunk * CHUNK])


def bench_domain(sizes: list[int]) -> None:
    print("\n## Pure domain: evaluate_learner (8 LOs)")
    print(f"{'pairs':>9} {'sources/pair':>13} {'total s':>9} {'us/pair':>9} {'us/source':>10} "
          f"{'scaling':>8} {'passed':>8}")
    base: float | None = None
    cases = [(size, 5) for size in sizes] + [(sizes[0], 40)]
    for size, per_lo in cases:
        outcomes, sources = domain_case(per_lo)
        passed = 0
        elapsed = 0.0
        for marks in chunks(size, sources):
            started = time.perf_counter()
            for learner in marks:
                result = evaluate_learner(outcomes, sources, learner, closed=False)
                passed += result.all_required_attained
            elapsed += time.perf_counter() - started
        per_pair = elapsed / size * 1e6
        if per_lo == 5 and base is None:
            base = per_pair
        scaling = f"{per_pair / base:.2f}x" if base and per_lo == 5 else "-"
        print(f"{size:>9,} {per_lo * LOS:>13} {elapsed:>9.2f} {per_pair:>9.1f} "
              f"{per_pair / (per_lo * LOS):>10.2f} {scaling:>8} {passed:>8,}")
    print("(scaling: time per pair relative to the smallest size; 1.00x = linear)")
    bench_fast(sizes)


def bench_fast(sizes: list[int]) -> None:
    """The fast path (plain ints, mapping compiled once, marks compiled per pair) against the
    general evaluation, in the same run on the same fresh mark objects, chunk by chunk
    (alternating, so load on the shared machine hits both alike); goal 50,000 pairs/s.

    Besides wall time: process CPU time (time this process ran), and the median time of one
    pair on each path (most pairs run between two switches to other processes: the nearest a
    shared machine comes to an idle one)."""
    print("\n## Fast path (compile_mapping + compile_marks + evaluate_fast) vs evaluate_learner")
    print(f"{'pairs':>9} {'general us':>11} {'fast us':>8} {'x faster':>9} {'fast pairs/s':>13} "
          f"{'cpu pairs/s':>12} {'median /s':>10} {'(general)':>10} {'scaling':>8} "
          f"{'gc runs':>8} {'goal':>7}")
    outcomes, sources = domain_case(5)
    base: float | None = None
    for size in sizes:
        slow = quick = cpu = 0.0
        fast_pairs: list[float] = []
        general_pairs: list[float] = []
        clock = time.perf_counter
        general = fast = 0
        collections = [0]

        def count(phase: str, _info: dict, collections: list[int] = collections) -> None:
            collections[0] += phase == "start"

        compiled = None
        for marks in chunks(size, sources):
            gc.callbacks.append(count)
            started, started_cpu = time.perf_counter(), time.process_time()
            if compiled is None:
                compiled = compile_mapping(outcomes, sources)  # once per offering
            for learner in marks:
                pair_started = clock()
                fast += fast_all_required_attained(
                    evaluate_fast(compiled, compile_marks(learner), closed=False))
                fast_pairs.append(clock() - pair_started)
            quick += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
            gc.callbacks.remove(count)
            started = time.perf_counter()
            for learner in marks:
                pair_started = clock()
                general += evaluate_learner(outcomes, sources, learner,
                                            closed=False).all_required_attained
                general_pairs.append(clock() - pair_started)
            slow += time.perf_counter() - started
        assert fast == general, (fast, general)
        slow, quick, cpu = slow / size, quick / size, cpu / size
        base = base or quick
        print(f"{size:>9,} {slow * 1e6:>11.1f} {quick * 1e6:>8.1f} {slow / quick:>8.2f}x "
              f"{1 / quick:>13,.0f} {1 / cpu:>12,.0f} {1 / median(fast_pairs):>10,.0f} "
              f"{median(general_pairs) * 1e6:>7.1f} us {quick / base:>7.2f}x {collections[0]:>8,} "
              f"{50000:>7,}")
    print("(8 LOs x 40 sources, every pair a new learner, its Mark objects built untimed; "
          "cpu: process time; median: time of the median pair, fast pairs/s and general "
          "us/pair; gc runs: collections in the fast path)")


def seed_store(factory, contexts: int, learners: int, items: int, now=None,
               passback: bool = False) -> dict:
    """`now`: the marks' time (the same in two seeds that must store the same)."""
    rng = random.Random(11)
    started = time.perf_counter()
    with factory() as db:
        platform = Platform(institution_id=_bench_institution(db).id, status="active",
                            issuer="https://bench.example.edu", client_id="bench",
                            auth_login_url="https://bench/auth", auth_token_url="https://bench/t")
        db.add(platform)
        db.flush()
        mc = MicroCredential(platform_id=platform.id, institution_id=db.get(Platform,
                             platform.id).institution_id, code="BENCH")
        db.add(mc)
        db.flush()
        version = MicroCredentialVersion(
            # The mandatory EU micro-credential (Annex I) elements a credential states.
            participation_form="online", quality_assurance="Annual review by the Office",
            assessment_methods=["Project"],
            platform_id=platform.id, institution_id=mc.institution_id, micro_credential_id=mc.id,
            version=1, status="in_review",
            title="Bench", kind="embedded", tqf_level=6, eqf_level=6, workload_hours=Decimal(20))
        db.add(version)
        db.flush()
        levels = [{"code": c, "label": c.title(), "lower_bound": b, "descriptor": ""}
                  for c, b in LEVELS]
        for n in range(LOS):
            db.add(LearningOutcome(platform_id=platform.id, version_id=version.id, position=n,
                                   code=f"LO{n}", statement="s", domain="skill", required=True,
                                   levels=levels, threshold="proficient"))
        db.flush()
        per_lo = items // LOS
        plan = []
        for c in range(contexts):
            context = Context(platform_id=platform.id, context_id=f"c{c}")
            db.add(context)
            db.flush()
            offering = Offering(platform_id=platform.id, context_id=context.id,
                                mc_version_id=version.id, reevaluation_policy="instructor",
                                grade_passback=passback)
            db.add(offering)
            item_rows = [GradeItem(context_id=context.id, source="ags", external_id=f"i{k}",
                                   label=f"Item {k}", maximum=Decimal(20)) for k in range(items)]
            db.add_all(item_rows)
            db.flush()
            people = db.execute(insert(Person).returning(Person.id), [
                {"platform_id": platform.id, "sub": f"c{c}-s{n}", "name": f"Learner {n}",
                 "updated_at": utcnow()} for n in range(learners)]).scalars().all()
            db.execute(insert(Membership), [
                {"context_id": context.id, "person_id": pid, "role": "learner", "active": True,
                 "lis_roles": [], "source": "nrps", "updated_at": utcnow()} for pid in people])
            fetched = now or utcnow()
            db.execute(insert(Score), [
                {"grade_item_id": item.id, "person_id": pid, "source": "ags",
                 "score": str(rng.randint(8, 20)), "maximum": "20", "fetched_at": fetched}
                for pid in people for item in item_rows])
            plan.append({"context": context.id, "offering": offering,
                         "sources": {f"LO{n}": [SourceSpec(GRADE_ITEM, str(item.id), Decimal(1))
                                                for item in item_rows[n * per_lo:(n + 1) * per_lo]]
                                     for n in range(LOS)},
                         "people": people, "items": [i.id for i in item_rows]})
        db.commit()
    return {"plan": plan, "seconds": time.perf_counter() - started}


def bench_store(pairs: int, passback: bool = False,
                paths: tuple[bool, ...] = (False, True)) -> None:
    """The store-backed runs on the fast path, with the general path (`fast=False`) on a copy of
    the same seed in the same run as the reference; both must store the same snapshots."""
    contexts = 10 if pairs >= 10 else 1
    learners = max(1, pairs // contexts)
    url = os.environ.get("LTI_TOOL_BENCH_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    print(f"\n## Store-backed: evaluate_changed ({contexts} contexts x {learners:,} learners, "
          f"8 LOs, 40 items{', grade passback on' if passback else ''}); general path "
          f"(fast=False) as the reference, same seed")
    print(f"{'run':<38} {'path':<8} {'evaluated':>10} {'changed':>8} {'total s':>9} "
          f"{'cpu s':>7} {'db cpu s':>9} {'ms/pair':>9} {'pairs/s':>9} {'x general':>10}")
    timings: dict[str, dict[str, float]] = {}
    stored: dict[bool, list] = {}
    now = utcnow()
    for fast in paths:
        path_url = url or f"sqlite:///{Path(tmp.name) / f'bench-{int(fast)}.db'}"
        timings["fast" if fast else "general"], stored[fast] = _store_runs(
            path_url, tmp.name, contexts, learners, fast, timings.get("general"), now, passback)
    print("(total s: wall time; cpu s: this process; db cpu s: the PostgreSQL server process "
          "of the session; the unchanged re-run: best of 3; x general: the general path's wall "
          "time / this one's)")
    if len(stored) < 2:
        tmp.cleanup()
        return
    same = stored[False] == stored[True]
    if not same:  # show the first difference
        for a, b in zip(sum(stored[False], []), sum(stored[True], []), strict=False):
            if a != b:
                print("general:", a, "\nfast:   ", b)
                break
    print(f"fast and general stored the same decisions, snapshots and evidence: {same}")
    tmp.cleanup()


def _server_cpu(db) -> float | None:
    """CPU seconds of the PostgreSQL server process serving `db`'s connection (if local)."""
    if db.get_bind().dialect.name != "postgresql":
        return None
    from sqlalchemy import text

    pid = db.execute(text("SELECT pg_backend_pid()")).scalar()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _store_runs(url: str, data_dir: str, contexts: int, learners: int, fast: bool,
                reference: dict[str, float] | None, now, passback: bool = False,
                ) -> tuple[dict[str, float], list]:
    from lti_tool.grades import evaluation as ev
    from lti_tool.store.models.evaluation import EvidenceRecord, GradePassback

    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as connection:  # the job queue (passback jobs) on PostgreSQL
        queue_schema.apply(connection)
    factory = make_session_factory(engine)
    settings = load_settings(overrides={"database_url": url, "data_dir": data_dir,
                                        "testing": True, "secret_key": "bench"}, environ={})
    seeded = seed_store(factory, contexts, learners, 40, now, passback)
    plan = seeded["plan"]
    label_path = "fast" if fast else "general"
    with factory() as db:
        for entry in plan:
            # Saved directly (save_mapping would already run the first evaluation).
            mapping = OutcomeMapping(offering_id=entry["offering"].id, attempt_no=1, version=1)
            for code, specs in entry["sources"].items():
                for spec in specs:
                    mapping.sources.append(MappingSource(outcome_code=code, kind=spec.kind,
                                                         ref=spec.ref, weight=spec.weight))
            db.add(mapping)
        db.commit()
    timings: dict[str, float] = {}

    def run(label: str, people: dict[int, set[int] | None], repeat: int = 1) -> ev.RunSummary:
        """The best of `repeat` runs (a run that changes nothing can be repeated)."""
        best = (float("inf"), float("inf"), None)
        for _ in range(repeat):
            summary = ev.RunSummary()
            with factory() as db:
                server = _server_cpu(db)
                started, cpu = time.perf_counter(), time.process_time()
                for context_id, person_ids in people.items():
                    summary.add(ev.evaluate_changed(db, settings, context_id, person_ids,
                                                    now=now, fast=fast))
                db.commit()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                after = _server_cpu(db)
            served = after - server if server is not None and after is not None else None
            best = min(best, (elapsed, cpu, served), key=lambda run: run[0])
        elapsed, cpu, served = best
        db_cpu = f"{served:>9.2f}" if served is not None else f"{'-':>9}"
        per = elapsed / summary.evaluated if summary.evaluated else 0.0
        timings[label] = elapsed
        ratio = f"{reference[label] / elapsed:>9.2f}x" if reference else f"{'-':>10}"
        print(f"{label:<38} {label_path:<8} {summary.evaluated:>10,} {summary.changed:>8,} "
              f"{elapsed:>9.2f} {cpu:>7.2f} {db_cpu} {per * 1e3:>9.3f} "
              f"{1 / per if per else 0:>9,.0f} {ratio}")
        return summary

    everyone = {entry["context"]: None for entry in plan}
    first = run("first evaluation (all learners)", everyone)
    run("re-run, nothing changed", everyone, repeat=3)
    target = plan[0]
    learner = target["people"][0]
    with factory() as db:
        score = db.scalar(select(Score).where(Score.person_id == learner,
                                              Score.grade_item_id == target["items"][0]))
        score.score = Decimal(0) if score.score and score.score > 10 else Decimal(20)
        db.commit()
    one = run("one mark changed, by person id", {target["context"]: {learner}})
    with factory() as db:
        score = db.scalar(select(Score).where(Score.person_id == learner,
                                              Score.grade_item_id == target["items"][1]))
        score.score = Decimal(0) if score.score and score.score > 10 else Decimal(20)
        db.commit()
    full = run("one more mark changed, full re-run", everyone)
    with factory() as db:
        statuses = db.execute(select(Decision.status)).scalars().all()
        # What was stored, by learner (ids are the same: the same seed, the same order).
        decisions = [(d.person_id, d.status, d.outcomes, d.share_attained, d.inputs_digest,
                      d.mapping_id, d.passed_via, [(a.number, a.results) for a in d.attempts])
                     for d in db.scalars(select(Decision).order_by(Decision.person_id))]
        evidence = [(r.person_id, r.event, r.payload) for r in
                    db.scalars(select(EvidenceRecord).order_by(EvidenceRecord.seq))]
        passbacks = [(p.decision_id, str(p.score_given), p.activity_progress,
                      p.grading_progress, p.status, p.tries)
                     for p in db.scalars(select(GradePassback).order_by(GradePassback.decision_id))]
    print(f"{label_path}: first run {first.passed:,} passed (held: MC in review), "
          f"{len(statuses) - first.passed:,} in progress; incremental run touched "
          f"{one.evaluated} learner(s); full re-run changed {full.changed} decision(s) "
          f"(flags raised: {full.flagged}).")
    engine.dispose()
    return timings, [_plain(decisions), evidence, passbacks]


def _plain(rows: list) -> list:
    """Decision ids differ between the two databases only if their insert order does."""
    return [row[:2] + (json.dumps(row[2]), str(row[3])) + row[4:] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="10000,100000")
    parser.add_argument("--store-pairs", type=int, default=10000)
    parser.add_argument("--quick", action="store_true", help="1,000 / 10,000 and 1,000 stored")
    parser.add_argument("--fast-only", action="store_true",
                        help="only the fast path table (general path beside it), no store")
    parser.add_argument("--store-only", action="store_true", help="only the store part")
    parser.add_argument("--passback", action="store_true",
                        help="grade passback on: changed decisions queue their scores")
    parser.add_argument("--paths", default="general,fast",
                        help="store paths to run, in order (general: the reference)")
    args = parser.parse_args()
    sizes = [1000, 10000] if args.quick else [int(p) for p in args.pairs.split(",")]
    if args.fast_only:
        bench_fast(sizes)
        return
    if not args.store_only:
        bench_domain(sizes)
    if args.store_pairs:
        paths = tuple(name.strip() == "fast" for name in args.paths.split(","))
        bench_store(1000 if args.quick else args.store_pairs, args.passback, paths)


def _bench_institution(db):
    """The benchmark's institution (created once per database)."""
    from lti_tool.store.institutions import InstitutionSpec, create_institution, find_institution

    return find_institution(db, "bench") or create_institution(
        db, InstitutionSpec(slug="bench", name="Bench University", country="TR"))


if __name__ == "__main__":
    main()

