"""Benchmark: pass -> grade in the LMS gradebook (issue 19: within 10 s of the decision).

A course of --learners learners in the fake Moodle (testkit/fakelms, in this process, on
loopback) with 3 AGS line items, mapped to the 3 LOs of an offering that sends grades to the
LMS. Each round, --batch learners' marks change in the LMS so that they pass; the gradebook
sync reads them and evaluates the changed learners, the transaction that records their
decisions stores the course's passback job, and a worker sends the scores. Measured per
learner: from the decision (the stored time of the job, written in the decision's transaction:
a little before it commits, so the figure errs long) to the fake LMS receiving the score.

Workers: the in-process runner (what `lti-tool demo` runs, woken by the commit) and, on
PostgreSQL, a real `lti-tool worker` process (procrastinate, woken by LISTEN/NOTIFY).
Reference in the same run: one score POST straight through the tool's AGS client (the same
guarded client, token cached), with no queue: the least a passback can take.

    python bench/passback.py [--learners 200] [--batch 1,20] [--rounds 5] [--database-url URL]

PostgreSQL: `--database-url` or `LTI_TOOL_BENCH_DATABASE_URL` (its public schema is dropped).
The first wave (every learner's "in progress" score when the mapping is saved) is shown too.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402

from bench.setup_env import loopback_settings  # noqa: E402
from lti_tool.domain.actors import Actor  # noqa: E402
from lti_tool.domain.evaluation import GRADE_ITEM, SourceSpec  # noqa: E402
from lti_tool.grades.mappings import save_mapping  # noqa: E402
from lti_tool.grades.passback import ags_passback_client  # noqa: E402
from lti_tool.grades.sync import sync_context  # noqa: E402
from lti_tool.jobs.registry import registry  # noqa: E402
from lti_tool.jobs.runner import InProcessRunner  # noqa: E402
from lti_tool.lms.token import publish_signing_key  # noqa: E402
from lti_tool.runtime import Runtime  # noqa: E402
from lti_tool.store.db import make_engine, make_session_factory  # noqa: E402
from lti_tool.store.keys import public_jwks  # noqa: E402
from lti_tool.store.migrate import upgrade  # noqa: E402
from lti_tool.store.models.catalogue import Offering  # noqa: E402
from lti_tool.store.models.core import Context, Platform  # noqa: E402
from lti_tool.store.models.grades import GradeItem  # noqa: E402
from lti_tool.store.models.jobs import Job  # noqa: E402
from testkit.fakelms import FakeLms  # noqa: E402
from testkit.fakelms.data import GRANTED_AGS, Result, generated_course  # noqa: E402
from testkit.institutions import institution_for_new_platform  # noqa: E402
from testkit.seed import Course, seed_offering  # noqa: E402

ITEMS = 3
FAILING, PASSING = 10.0, 100.0  # the offering's threshold is 70 of 100 on every LO
STAMP = "2026-11-22T17:55:04+00:00"


class ArrivalLog(list):
    """The fake LMS's received scores, each with the wall-clock time it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[tuple[str, float], float] = {}

    def append(self, score: dict) -> None:  # type: ignore[override]
        self.arrived.setdefault((str(score.get("userId")), score.get("scoreGiven")), time.time())
        super().append(score)


@dataclass
class Round:
    worker: str
    batch: int
    latencies: list[float]  # seconds, decision -> LMS
    sync: float  # seconds: the sync that read the marks and recorded the decisions


def _fresh_database(url: str) -> None:
    engine = make_engine(url)
    if engine.url.get_backend_name() == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)  # as `lti-tool db upgrade`: the worker process finds it at head
    engine.dispose()


def _course(runtime: Runtime, fake: FakeLms) -> tuple[int, int, list[str]]:
    """The registration and course context of `fake`, synced, with an offering mapped to its
    three items and sending grades; (context id, offering id, learner user ids)."""
    with runtime.sessions() as db:
        platform = Platform(institution_id=institution_for_new_platform(db).id, status="active",
                            issuer=fake.base_url, client_id=fake.client_id, lms_kind="moodle",
                            auth_login_url=fake.base_url + "/auth",
                            auth_token_url=fake.token_url)
        db.add(platform)
        db.flush()
        context = Context(platform_id=platform.id, context_id=fake.course.course_id,
                          ags_scopes=GRANTED_AGS, ags_lineitems_url=fake.lineitems_url,
                          nrps_url=fake.memberships_url, nrps_versions=["2.0"])
        db.add(context)
        db.commit()
        course = seed_offering(db, Course(platform.id, context.id, {}, {}), outcomes=ITEMS,
                               policy="instructor")
        offering = db.get(Offering, course.offering_id)
        offering.grade_passback = True
        db.commit()
        context_id, offering_id = context.id, offering.id
    if sync_context(runtime, context_id, trigger="cli").status != "succeeded":
        raise SystemExit("the first sync failed")
    with runtime.sessions() as db:
        items = [db.scalar(select(GradeItem.id).where(
            GradeItem.external_id == fake.lineitem_url(item.id)))
            for item in fake.course.line_items]
    mapping = {f"LO{n}": [SourceSpec(GRADE_ITEM, str(item), Decimal(1))]
               for n, item in enumerate(items, 1)}
    with runtime.sessions() as db:
        save_mapping(db, runtime.settings, offering_id, mapping, Actor(None, "instructor"))
        db.commit()
    learners = [m["user_id"] for m in fake.course.members if m.get("user_id", "").isdigit()
                and int(m["user_id"]) >= 1000]
    return context_id, offering_id, learners


def _newest_job_time(runtime: Runtime) -> float:
    """When the newest passback job was stored (UTC; SQLite gives it back without a zone)."""
    with runtime.sessions() as db:
        created = db.scalar(select(Job.created_at).where(Job.kind == "grades.passback")
                            .order_by(Job.id.desc()).limit(1))
    if created is None:
        raise SystemExit("no passback job was stored")
    return (created if created.tzinfo else created.replace(tzinfo=UTC)).timestamp()


def _wait_for(arrivals: ArrivalLog, wanted: list[tuple[str, float]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(key in arrivals.arrived for key in wanted):
            return True
        time.sleep(0.002)
    return False


def _round(runtime: Runtime, fake: FakeLms, context_id: int, learners: list[str], worker: str,
           timeout: float) -> Round:
    """`learners` pass: their LMS marks change, the sync records it, the worker sends it."""
    arrivals: ArrivalLog = fake.posted_scores  # type: ignore[assignment]
    for item in fake.course.line_items:
        for uid in learners:
            fake.course.results[item.id][uid] = Result(PASSING, 100, STAMP, "")
    started = time.time()
    if sync_context(runtime, context_id, trigger="cli").status != "succeeded":
        raise SystemExit("a sync failed")
    synced = time.time()
    decided = _newest_job_time(runtime)
    wanted = [(uid, PASSING) for uid in learners]
    if not _wait_for(arrivals, wanted, timeout):
        raise SystemExit(f"{worker}: scores not in the LMS after {timeout:.0f} s")
    return Round(worker, len(learners), [arrivals.arrived[key] - decided for key in wanted],
                 synced - started)


def _reference(runtime: Runtime, fake: FakeLms, context_id: int, uid: str, n: int
               ) -> list[float]:
    """One score POST at a time through the tool's own AGS client: no queue, no worker."""
    with runtime.sessions() as db:
        client = ags_passback_client(db, runtime.settings, db.get(Context, context_id))
    url = fake.lineitem_url(fake.course.line_items[0].id)
    times = []
    for k in range(n):
        score = {"userId": uid, "scoreGiven": float(k % 50), "scoreMaximum": 100.0,
                 "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                 "timestamp": STAMP}
        started = time.perf_counter()
        client.post_score(url, score)
        times.append(time.perf_counter() - started)
    return times


def _worker_process(url: str, workdir: str) -> subprocess.Popen:
    """`lti-tool worker` on the bench's database and data folder (its encryption key opens the
    secrets the bench stored), allowed to call the fake LMS on loopback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LTI_TOOL_DATABASE_URL": url,
           "LTI_TOOL_DATA_DIR": workdir, "LTI_TOOL_KEY_STORAGE": "database",
           "LTI_TOOL_OUTBOUND_ALLOW": "127.0.0.1"}
    return subprocess.Popen([sys.executable, "-m", "lti_tool.cli", "worker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--batch", default="1,20", help="learners passing at once, per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(SystemExit("timed out")))
    signal.alarm(args.timeout)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    url, workdir, settings = loopback_settings(args.database_url)
    _fresh_database(url)
    engine = make_engine(url)
    runtime = Runtime(settings=settings, engine=engine, sessions=make_session_factory(engine))
    publish_signing_key(runtime.sessions, settings)
    postgres = engine.url.get_backend_name() == "postgresql"
    batches = [int(b) for b in args.batch.split(",")]
    needed = sum(batches) * args.rounds * (2 if postgres else 1)
    if needed > args.learners:
        raise SystemExit(f"--learners must be at least {needed} (each round passes new ones)")

    def jwks() -> dict:
        with runtime.sessions() as db:
            return public_jwks(db, settings, "lti")

    course = generated_course(args.learners, ITEMS)
    for results in course.results.values():
        for uid in results:
            results[uid] = Result(FAILING, 100, STAMP, "")
    fake = FakeLms(kind="moodle", course=course, tool_jwks=jwks)
    fake.posted_scores = ArrivalLog()
    rounds: list[Round] = []
    with fake.running():
        runner = InProcessRunner(runtime, registry(), poll=60, periodic=False).start()
        try:
            context_id, _offering_id, learners = _course(runtime, fake)
            decided = _newest_job_time(runtime)
            wave = [(uid, 0.0) for uid in learners]
            _wait_for(fake.posted_scores, wave, args.timeout / 2)
            arrived = [fake.posted_scores.arrived[key] - decided for key in wave
                       if key in fake.posted_scores.arrived]
            reference_before = _reference(runtime, fake, context_id, learners[-1], 20)
            queue = iter(learners)
            for _ in range(args.rounds):
                for batch in batches:
                    rounds.append(_round(runtime, fake, context_id,
                                         [next(queue) for _ in range(batch)],
                                         "in-process runner", args.timeout / 4))
        finally:
            runner.stop()
        if postgres:
            worker = _worker_process(url, workdir)
            try:
                time.sleep(3)  # the worker migrates (nothing to do) and starts listening
                for _ in range(args.rounds):
                    for batch in batches:
                        rounds.append(_round(runtime, fake, context_id,
                                             [next(queue) for _ in range(batch)],
                                             "`lti-tool worker` process", args.timeout / 4))
            except SystemExit:
                worker.terminate()
                print(worker.communicate(timeout=60)[0][-4000:], file=sys.stderr)
                raise
            finally:
                if worker.poll() is None:
                    worker.terminate()
                    worker.communicate(timeout=60)
        reference_after = _reference(runtime, fake, context_id, learners[-1], 20)
    reference = statistics.median(reference_before + reference_after)

    backend = engine.url.get_backend_name()
    print(f"Grade passback latency: {args.learners} learners, {ITEMS} AGS items, {backend}, "
          "fake Moodle on loopback (in this process)")
    print(f"{'run':44} {'batch':>5} {'n':>4} {'median ms':>9} {'max ms':>9} {'x ref':>7} "
          f"{'goal ms':>8} {'sync ms':>9}")
    print(f"{'one score POST, no queue (reference)':44} {1:5d} {40:4d} {_ms(reference)} "
          f"{_ms(max(reference_before + reference_after))}")
    if arrived:
        print(f"{'first wave: every in-progress score':44} {len(wave):5d} {len(arrived):4d} "
              f"{_ms(statistics.median(arrived))} {_ms(max(arrived))} "
              f"{statistics.median(arrived) / reference:7.1f} {10_000:8d}")
    for worker in dict.fromkeys(r.worker for r in rounds):
        for batch in batches:
            chosen = [r for r in rounds if r.worker == worker and r.batch == batch]
            latencies = [t for r in chosen for t in r.latencies]
            median = statistics.median(latencies)
            print(f"{worker + ', learners pass':44} {batch:5d} {len(latencies):4d} {_ms(median)} "
                  f"{_ms(max(latencies))} {median / reference:7.1f} {10_000:8d} "
                  f"{_ms(statistics.median(r.sync for r in chosen))}")
    worst = max(t for r in rounds for t in r.latencies)
    print(f"summary: every score in the LMS gradebook within {worst:.2f} s of its decision "
          f"(goal 10 s); one bare score POST {reference * 1000:.1f} ms")
    print("latency: from the passback job's stored time (written with the decisions, before "
          "their commit) to the fake LMS receiving the score; sync ms: the gradebook sync "
          "that read the changed marks and recorded the decisions (not part of the latency)")


if __name__ == "__main__":
    main()
