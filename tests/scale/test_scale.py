"""Scale and fault tests: 3 serve processes and 2 workers on one PostgreSQL cluster.

Run: `python -m pytest -n 0 -m scale tests/scale` (tests/run.sh runs it once, in its
PostgreSQL phase). Loopback only; every wait is bounded; the figures (launches/s across nodes,
job latency, recovery times) are printed and written to `scale-figures.json` in the test's
temporary folder, never asserted.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from sqlalchemy import func, select

import lti_tool.store.models  # noqa: F401
from lti_tool.domain.evaluation import GRADE_ITEM, SourceSpec
from lti_tool.grades import evaluation as ev
from lti_tool.grades.sync import sync_context
from lti_tool.jobs import enqueue
from lti_tool.jobs.office import backlog
from lti_tool.lms.token import CACHE
from lti_tool.runtime import Runtime, build_runtime
from lti_tool.settings import load_settings
from lti_tool.store.keys import public_jwks
from lti_tool.store.migrate import upgrade
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.core import Context
from lti_tool.store.models.evaluation import GradePassback
from lti_tool.store.models.grades import GradeItem
from lti_tool.store.models.jobs import Job
from testkit.fakelms import FakeLms
from testkit.fakelms.data import Result, generated_course
from testkit.lti import LTI, fixture_claims, platform_key, register_platform, sign
from tests.evaluation.conftest import seed_course
from tests.fakelms.pytest_fixtures import make_context
from tests.loopback import LOOPBACK_FAKES
from tests.scale.cluster import SERVE_BASE_PORT, Cluster, Postgres, wait_until

pytestmark = [pytest.mark.scale, pytest.mark.postgres]

COURSES, LEARNERS, ITEMS = 10, 30, 3
NODES, WORKERS = 3, 2
LAUNCH_ISSUER, LAUNCH_CLIENT = "http://127.0.0.1:8189", "scale-launch-client"
FIGURES: dict[str, object] = {}


@dataclasses.dataclass
class Production:
    runtime: Runtime
    cluster: Cluster
    postgres: Postgres
    fakes: list[FakeLms]
    contexts: list[int]
    launch_platform: object
    launch_key: object


def _tool_jwks(runtime: Runtime):
    def jwks() -> dict:
        with runtime.sessions() as db:
            return public_jwks(db, runtime.settings, "lti")
    return jwks


def _set_marks(fake: FakeLms, mark: float, stamp: str) -> None:
    for item in fake.course.line_items:
        fake.course.results[item.id] = {str(1000 + n): Result(mark, 100, stamp)
                                        for n in range(LEARNERS)}


def _seed(runtime: Runtime, fakes: list[FakeLms]) -> list[int]:
    """Ten synced courses of 30 learners with an offering mapped to their 3 AGS items; every
    learner is in progress (marks of 10 %)."""
    contexts = []
    for fake in fakes:
        _set_marks(fake, 10.0, "2026-11-22T17:55:04+00:00")
        context_id = make_context(runtime, fake, rest=False)
        with runtime.sessions() as db:
            course = seed_course(db, context=db.get(Context, context_id), learners=0,
                                 subs=[str(1000 + n) for n in range(LEARNERS)])
            offering_id, by = course.offering.id, course.by
            db.commit()
        assert sync_context(runtime, context_id).status == "succeeded"
        with runtime.sessions() as db:
            items = [db.scalar(select(GradeItem.id).where(
                GradeItem.external_id == fake.lineitem_url(item.id)))
                for item in fake.course.line_items]
            ev.save_mapping(db, runtime.settings, offering_id, {
                f"LO{k + 1}": [SourceSpec(GRADE_ITEM, str(items[k]), Decimal(1))]
                for k in range(ITEMS)}, by)
            db.commit()
        contexts.append(context_id)
    return contexts


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("scale")
    postgres = Postgres.start()
    try:
        yield from _production(postgres, data_dir)
    finally:  # also on SIGTERM (tests/scale/conftest.py), wherever the setup had got to
        postgres.remove()
        print("\nscale figures:", json.dumps(FIGURES, indent=2))
        (data_dir / "scale-figures.json").write_text(json.dumps(FIGURES, indent=2))


def _production(postgres: Postgres, data_dir: Path):
    overrides = {"database_url": postgres.url, "data_dir": str(data_dir / "instance"),
                 "base_url": f"http://127.0.0.1:{SERVE_BASE_PORT}", "secret_key": "scale-secret",
                 "key_storage": "database", "sync_after_launch": False,
                 "sync_retry_attempts": 3, "sync_retry_base_delay": 0.05,
                 "sync_retry_max_delay": 1.0, "sync_retry_budget": 5.0,
                 "sync_read_timeout": 2.0,
                 # the fake LMSs listen on loopback: this process and the nodes and workers
                 # may call them (LTI_TOOL_OUTBOUND_ALLOW; each registration's hosts still apply)
                 "outbound_allow": LOOPBACK_FAKES,
                 # the load generator logs in from one address, far above a person's rate (the
                 # limit itself is tested in tests/security)
                 "rate_limit_login": "100000/minute"}
    env = {**{k: v for k, v in __import__("os").environ.items()
              if not k.startswith("LTI_TOOL_")},
           **{f"LTI_TOOL_{k.upper()}": str(v) for k, v in overrides.items()},
           "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "LTI_TOOL_JOB_LEASE_SECONDS": "6", "LTI_TOOL_JOB_RECOVER_CRON": "*/2 * * * * *",
           "LTI_TOOL_WORKER_STALLED_SECONDS": "6", "LTI_TOOL_WORKER_HEARTBEAT_SECONDS": "1"}
    runtime = build_runtime(load_settings(overrides=overrides, environ={}))
    upgrade(runtime.engine)  # Alembic, as `lti-tool db upgrade` does (procrastinate included)
    fakes: list[FakeLms] = []
    stack = []
    cluster = Cluster(env=env, log_dir=data_dir)
    try:
        for n in range(COURSES):
            fake = FakeLms(kind="moodle", course=generated_course(LEARNERS, ITEMS, seed=n),
                           tool_jwks=_tool_jwks(runtime))
            context = fake.running()
            context.__enter__()
            stack.append(context)
            fakes.append(fake)
        contexts = _seed(runtime, fakes)
        key = platform_key("scale")
        with runtime.sessions() as db:
            platform = register_platform(db, issuer=LAUNCH_ISSUER, client_id=LAUNCH_CLIENT,
                                         key=key, lms_kind="moodle")
            db.expunge(platform)
        for port in range(SERVE_BASE_PORT, SERVE_BASE_PORT + NODES):
            cluster.start_serve(port)
        for _ in range(WORKERS):
            cluster.start_worker()
        cluster.wait_ready()
        yield Production(runtime, cluster, postgres, fakes, contexts, platform, key)
    finally:
        cluster.stop()
        for context in stack:
            context.__exit__(None, None, None)
        runtime.engine.dispose()


def _unfinished(runtime: Runtime) -> int:
    with runtime.sessions() as db:
        return db.scalar(select(func.count()).select_from(Job).where(
            Job.status.in_(("waiting", "running")), Job.kind.startswith("grades."))) or 0


def test_300_learners_pass_at_once_through_lms_faults_and_a_killed_worker(production) -> None:
    p, runtime = production, production.runtime
    wait_until(lambda: _unfinished(runtime) == 0, timeout=600,
               what="the in-progress scores of the seed to be sent")
    before = {id(f): len(f.posted_scores) for f in p.fakes}
    faulty = p.fakes[:5]
    for fake in faulty:  # for a while: 429 with Retry-After, 500s, a time-out, a drop
        fake.fail("/scores", status=429, retry_after="1", times=2, method="POST")
        fake.fail("/scores", status=500, times=2, method="POST")
        fake.fail("/scores", delay=3.0, times=1, method="POST")
        fake.fail("/scores", drop=True, times=1, method="POST")
    for fake in p.fakes:
        _set_marks(fake, 90.0, "2026-12-01T09:00:00+00:00")
    started = time.monotonic()
    with runtime.sessions() as db:  # every course at once: 300 learners pass
        for context_id in p.contexts:
            enqueue(db, "grades.sync", {"context_id": context_id, "trigger": "scale"},
                    key=f"scale-sync-{context_id}")
        db.commit()

    def issued() -> int:
        with runtime.sessions() as db:
            return db.scalar(select(func.count()).select_from(Credential)) or 0

    wait_until(lambda: issued() >= 20, timeout=600, what="the first credentials")
    victim = p.cluster.workers[0]
    with runtime.sessions() as db:
        running = db.scalars(select(Job).where(Job.status == "running")).all()
        killed_contexts = {j.payload.get("context_id") for j in running
                           if f":{victim.pid}:" in (j.worker or "")}
    p.cluster.kill_worker(victim)  # kill -9 in the middle of issuance and passback
    killed_at = time.monotonic()
    p.cluster.start_worker()  # as systemd's Restart=always does
    waiting_seen: list[int] = []

    def drained() -> bool:
        with runtime.sessions() as db:
            waiting_seen.append(backlog(db).counts["waiting"])  # what the Office sees
            sent = sum(1 for status, score in db.execute(
                select(GradePassback.status, GradePassback.score_given))
                if status == "sent" and score == 100)
        return issued() == COURSES * LEARNERS and sent == COURSES * LEARNERS \
            and _unfinished(runtime) == 0

    wait_until(drained, timeout=900, step=1.0, what="every credential and score")
    FIGURES["wave_seconds_300_learners"] = round(time.monotonic() - started, 1)
    FIGURES["recovery_after_kill9_seconds"] = round(time.monotonic() - killed_at, 1)
    with runtime.sessions() as db:
        per_learner = Counter(db.execute(select(Credential.person_id, Credential.mc_version_id)))
        latencies = [(j.finished_at - j.created_at).total_seconds() for j in db.scalars(
            select(Job).where(Job.kind == "grades.passback", Job.status == "done"))]
        failed = db.scalar(select(func.count()).select_from(Job).where(Job.status == "failed"))
    assert len(per_learner) == COURSES * LEARNERS and set(per_learner.values()) == {1}
    assert failed == 0
    assert max(waiting_seen) > 0 and waiting_seen[-1] == 0  # the Office saw it drain
    for n, fake in enumerate(p.fakes):
        columns = [c for c in fake.created_line_items if c.get("tag") == "micro-credential"]
        assert len(columns) == 1, f"course {n}: {len(columns)} micro-credential columns"
        [item_id] = [i.id for i in fake.course.line_items if i.tag == "micro-credential"]
        results = fake.course.results[item_id]
        assert {uid: r.score for uid, r in results.items()} == {
            str(1000 + k): 100.0 for k in range(LEARNERS)}, f"course {n}"
        completed = Counter(s["userId"] for s in fake.posted_scores[before[id(fake)]:]
                            if s["activityProgress"] == "Completed")
        if p.contexts[n] not in killed_contexts:  # nothing sent twice, faults or not
            assert set(completed.values()) == {1}, f"course {n}: {completed}"
        else:
            FIGURES.setdefault("rescored_after_kill9", {})[n] = sum(completed.values()) - LEARNERS
    FIGURES["passback_job_latency_p50_s"] = round(statistics.median(latencies), 2)
    FIGURES["passback_job_latency_max_s"] = round(max(latencies), 2)


def test_nodes_and_workers_recover_from_a_postgresql_restart(production) -> None:
    p, runtime = production, production.runtime
    p.postgres.stop_server()
    down_at = time.monotonic()
    for port in p.cluster.serve:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/ready", timeout=30).status_code == 503
    time.sleep(3)
    p.postgres.start_server()
    up_at = time.monotonic()
    p.cluster.wait_ready(timeout=120)
    FIGURES["nodes_ready_after_postgres_restart_s"] = round(time.monotonic() - up_at, 1)
    FIGURES["postgres_down_s"] = round(up_at - down_at, 1)
    assert all(w.poll() is None for w in p.cluster.workers[1:])  # they recovered themselves
    runtime.engine.dispose()
    CACHE.clear()
    with runtime.sessions() as db:
        for context_id in p.contexts:
            enqueue(db, "grades.sync", {"context_id": context_id, "trigger": "scale"},
                    key=f"scale-resync-{context_id}")
        db.commit()
    waited = wait_until(lambda: _unfinished(runtime) == 0, timeout=600, step=0.5,
                        what="jobs after the restart")
    FIGURES["jobs_done_after_postgres_restart_s"] = round(waited, 1)
    with runtime.sessions() as db:
        done = db.scalar(select(func.count()).select_from(Job).where(
            Job.key.startswith("scale-resync-"), Job.status == "done"))
    assert done == COURSES


def _launch_load(p: Production, stop: threading.Event, outcomes: list, clients: int = 3,
                 limit: int = 600) -> None:
    """A bounded load generator behaving like a load balancer (nginx `proxy_next_upstream
    error`): a connection refused by a stopping node goes to the next node."""
    urls = p.cluster.urls
    base = p.cluster.env["LTI_TOOL_BASE_URL"]

    def send(session: requests.Session, n: int, method: str, path: str, **kwargs):
        for attempt in range(len(urls) * 3):
            url = urls[(n + attempt) % len(urls)]
            try:
                return session.request(method, url + path, allow_redirects=False, timeout=30,
                                       **kwargs)
            except requests.ConnectionError:
                time.sleep(0.05)
        raise requests.ConnectionError("no node answered")

    def client(c: int) -> None:
        session = requests.Session()
        n = c
        while not stop.is_set() and len(outcomes) < limit:
            n += clients
            try:
                login = send(session, n, "GET", "/lti/login", params={
                    "iss": LAUNCH_ISSUER, "client_id": LAUNCH_CLIENT, "login_hint": "1",
                    "target_link_uri": base + "/lti/launch"})
                query = parse_qs(urlparse(login.headers.get("Location", "")).query)
                if login.status_code != 302:
                    outcomes.append(("login", login.status_code))
                    continue
                claims = fixture_claims("moodle/id_token_student_resource_link.json",
                                        p.launch_platform)
                claims.update(sub=f"scale-user-{n % 40}", nonce=query["nonce"][0])
                claims[LTI + "target_link_uri"] = base + "/lti/launch"
                reply = send(session, n + 1, "POST", "/lti/launch", data={
                    "id_token": sign(claims, p.launch_key), "state": query["state"][0]})
                outcomes.append(("launch", reply.status_code))
            except requests.RequestException as exc:
                outcomes.append(("error", type(exc).__name__))

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(900)


def test_a_rolling_restart_under_launch_load_fails_no_launch(production) -> None:
    p = production
    outcomes: list = []
    stop = threading.Event()
    load = threading.Thread(target=_launch_load, args=(p, stop, outcomes), daemon=True)
    started = time.monotonic()
    load.start()
    wait_until(lambda: len(outcomes) >= 20, timeout=300, what="a steady launch load")
    restarts = [p.cluster.restart_serve(port) for port in sorted(p.cluster.serve)]
    time.sleep(2)
    stop.set()
    load.join(120)
    wall = time.monotonic() - started
    launches = [o for o in outcomes if o[0] == "launch"]
    FIGURES["launches_per_s_across_3_nodes_during_rolling_restart"] = round(
        len(launches) / wall, 1)
    FIGURES["node_restart_to_ready_s"] = [round(r, 1) for r in restarts]
    failures = [o for o in outcomes if o != ("launch", 303)]
    assert launches and not failures, Counter(failures)
