"""Benchmark: sync a course of 5,000 learners and 50 gradebook items from the fake LMS.

The fake Moodle (testkit/fakelms) runs in its own process on loopback and pages AGS line items,
AGS results and the NRPS roster. Prints wall time, HTTP requests made against the minimum that
paging allows, SQL statements, rows written on a first and on a repeated (nothing changed)
sync, and peak memory. Bounded: it stops by itself after --timeout seconds. It never fails the
build.

The reference is the bare cost of fetching and parsing the same pages with the same client:
the tool's `LmsHttp` over the guarded outbound client, following the same `Link` headers with
the same Accept headers and the same JSON reading (`lti_tool.lms.service.iter_pages`), with
nothing compared or stored. It runs before, between and after the two syncs; each sync is
compared with the mean of the reference runs either side of it. Plain `requests` + `json` on
the same pages is shown too, for information.

    python bench/sync.py [--learners 5000] [--items 50] [--page 500] [--database-url URL]
                         [--profile]

PostgreSQL: `--database-url` or `LTI_TOOL_BENCH_DATABASE_URL` (tables are dropped).
`--profile` prints the top of a cProfile of each sync.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import multiprocessing
import os
import pstats
import resource
import signal
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.setup_env import loopback_settings  # noqa: E402
from lti_tool.grades.sync import sync_context  # noqa: E402
from lti_tool.lms.ags import service_url  # noqa: E402
from lti_tool.lms.http import LmsHttp, RetryPolicy  # noqa: E402
from lti_tool.lms.token import publish_signing_key  # noqa: E402
from lti_tool.outbound import client_for  # noqa: E402
from lti_tool.runtime import Runtime  # noqa: E402
from lti_tool.store.db import Base, make_engine, make_session_factory  # noqa: E402


def _serve_fake(url: str, learners: int, items: int, page: int, ready, stop) -> None:
    """Child process: the fake LMS with the generated course, until `stop` is set."""
    from lti_tool.settings import load_settings as settings_for
    from lti_tool.store.keys import public_jwks
    from testkit.fakelms import FakeLms
    from testkit.fakelms.data import generated_course

    engine = make_engine(url)
    factory = make_session_factory(engine)
    settings = settings_for(overrides={"database_url": url}, environ={})

    def jwks() -> dict:
        with factory() as db:
            return public_jwks(db, settings, "lti")

    fake = FakeLms(kind="moodle", course=generated_course(learners, items), tool_jwks=jwks,
                   ags_page=page, nrps_page=page)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    fake.tokens[BARE_TOKEN] = frozenset(fake.allowed_scopes)  # for the bare-fetch reference
    with fake.running():
        ready.put((fake.base_url, fake.token_url, fake.lineitems_url, fake.memberships_url))
        stop.wait()


BARE_TOKEN = "bench-bare-fetch"


ACCEPT = {"items": "application/vnd.ims.lis.v2.lineitemcontainer+json",
          "results": "application/vnd.ims.lis.v2.resultcontainer+json",
          "members": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"}


def bare_fetch(http: LmsHttp, lineitems_url: str, memberships_url: str) -> tuple[int, int]:
    """The reference: fetch and parse the same pages with the tool's own client (`http`, the
    sync's `LmsHttp` over the guarded outbound client) and page walker, nothing else.

    Line items, every item's results and the roster, following the Link headers. No token
    request (a fixed token), no records, no comparing, no storing. Returns (requests, entries
    parsed).
    """
    from lti_tool.lms.service import iter_pages

    before = http.request_count

    def pages(url: str, accept: str):
        headers = {"Accept": accept, "Authorization": f"Bearer {BARE_TOKEN}"}
        for body, _reply in iter_pages(lambda page: http.get(page, headers=headers), url,
                                       "the bench pages"):
            yield body

    parsed = _read_course(pages, lineitems_url, memberships_url)
    return http.request_count - before, parsed


def _read_course(pages, lineitems_url: str, memberships_url: str) -> int:
    """Every line item's results and the roster, read through `pages(url, accept)`: how many
    results and members were parsed."""
    parsed = 0
    items = [item for page in pages(lineitems_url, ACCEPT["items"]) for item in page]
    for item in items:
        for page in pages(service_url(item["id"], "results"), ACCEPT["results"]):
            parsed += len(page)
    for page in pages(memberships_url, ACCEPT["members"]):
        parsed += len(page["members"])
    return parsed


def plain_fetch(lineitems_url: str, memberships_url: str) -> tuple[int, int]:
    """For information: the same pages with plain requests + json (no guard, no retries)."""
    import requests

    from lti_tool.lms.links import next_link

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {BARE_TOKEN}"
    count = 0

    def pages(url: str | None, accept: str):
        nonlocal count
        while url:
            reply = session.get(url, headers={"Accept": accept}, timeout=120)
            reply.raise_for_status()
            count += 1
            yield reply.json()
            url = next_link(reply.headers)

    parsed = _read_course(pages, lineitems_url, memberships_url)
    return count, parsed


class StatementCounter:
    """SQL statements sent (an executemany counts once) and parameter sets, per engine."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.statements = self.parameter_sets = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements += 1
        self.parameter_sets += len(parameters) if executemany else 1

    def take(self) -> tuple[int, int]:
        counted = (self.statements, self.parameter_sets)
        self.statements = self.parameter_sets = 0
        return counted


def _kib_to_mib(kib: int) -> float:
    return kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=5000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--page", type=int, default=500, help="the LMS's page size")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeated syncs (each between two reference runs); the best "
                             "ratio is the summary's")
    parser.add_argument("--profile", action="store_true",
                        help="print the top of a cProfile of each sync")
    parser.add_argument("--profile-dump", default="",
                        help="with --profile: a directory for each sync's cProfile stats")
    parser.add_argument("--profile-sort", default="tottime",
                        help="cProfile order for --profile (tottime, cumulative, ...)")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(SystemExit("timed out")))
    signal.alarm(args.timeout)

    url, workdir, settings = loopback_settings(args.database_url)
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    runtime = Runtime(settings=settings, engine=engine, sessions=make_session_factory(engine))
    publish_signing_key(runtime.sessions, settings)

    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve_fake, daemon=True,
                         args=(url, args.learners, args.items, args.page, ready, stop))
    server.start()
    try:
        base, token_url, lineitems_url, memberships_url = ready.get(timeout=60)
        from lti_tool.store.models.core import Context, Platform
        from testkit.fakelms.data import GRANTED_AGS

        with runtime.sessions() as db:
            platform = Platform(institution_id=_bench_institution(db).id, status="active",
                                issuer=base, client_id="wIHNTU76CCVPeFh", lms_kind="moodle",
                                auth_login_url=base + "/auth", auth_token_url=token_url)
            db.add(platform)
            db.flush()
            context = Context(platform_id=platform.id, context_id="2", ags_scopes=GRANTED_AGS,
                              ags_lineitems_url=lineitems_url, nrps_url=memberships_url)
            db.add(context)
            db.commit()
            context_id = context.id
            platform_hosts = platform.allowed_hosts

        pages = math.ceil
        minimum = (1 + pages(args.items / args.page)
                   + args.items * pages(args.learners / args.page)
                   + pages((args.learners + 1) / args.page))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        counter = StatementCounter(engine)
        reference_http = LmsHttp(RetryPolicy(read_timeout=120),
                                 outbound=client_for(settings)).for_hosts(platform_hosts)

        def reference() -> float:
            profile = cProfile.Profile() if args.profile_dump else None
            started, cpu = time.perf_counter(), time.process_time()
            if profile:
                profile.enable()
            requests, _parsed = bare_fetch(reference_http, lineitems_url, memberships_url)
            if profile:
                profile.disable()
                profile.dump_stats(f"{args.profile_dump}/reference-{len(references)}.prof")
            references.append((time.perf_counter() - started, requests,
                               time.process_time() - cpu))
            return references[-1][0]

        references: list[tuple[float, int, float]] = []
        rows = []
        reference()
        labels = ["first sync"] + ["repeated sync (nothing changed)"] * args.rounds
        for label in labels:
            http = LmsHttp(RetryPolicy(read_timeout=120), outbound=client_for(settings))
            counter.take()
            profile = cProfile.Profile() if args.profile else None
            started, cpu = time.perf_counter(), time.process_time()
            if profile:
                profile.enable()
            result = sync_context(runtime, context_id, trigger="cli", http=http)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            if profile:
                profile.disable()
                print(f"--- {label}: cProfile, top 40 by {args.profile_sort}")
                pstats.Stats(profile).sort_stats(args.profile_sort).print_stats(40)
                if args.profile_dump:
                    profile.dump_stats(f"{args.profile_dump}/sync-{len(rows)}.prof")
            statements = counter.take()
            if result.status != "succeeded":
                raise SystemExit(f"{label} failed: {result.error}")
            before = references[-1][0]
            after = reference()
            rows.append((label, wall, result, statements, (before + after) / 2, cpu))
        started = time.perf_counter()
        plain_requests, _parsed = plain_fetch(lineitems_url, memberships_url)
        plain_wall = time.perf_counter() - started
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        traced = sync_context(runtime, context_id, trigger="cli")
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        stop.set()
        server.join(10)
        if server.is_alive():
            server.terminate()

    backend = engine.url.get_backend_name()
    print(f"Gradebook sync benchmark: {args.learners} learners x {args.items} items "
          f"(AGS results + NRPS roster, LMS page size {args.page}), {backend}, "
          f"fake Moodle on loopback in its own process")
    print(f"{'run':38} {'wall s':>8} {'x bare':>7} {'goal':>6} {'CPU s':>6} {'requests':>9} "
          f"{'minimum':>8} {'SQL stmts':>10} {'scores':>8} {'rows written':>13}")
    for n, (wall, requests, cpu) in enumerate(references, 1):
        print(f"{f'bare fetch + parse, run {n} (reference)':38} {wall:8.2f} {'':>7} {'':>6} "
              f"{cpu:6.2f} {requests:9d} {minimum:8d}")
    for label, wall, result, statements, bare, cpu in rows:
        goal = 2.5 if label == "first sync" else 1.5
        print(f"{label:38} {wall:8.2f} {wall / bare:7.2f} {goal:6.1f} {cpu:6.2f} "
              f"{result.requests:9d} {minimum:8d} {statements[0]:10d} {result.scores:8d} "
              f"{result.rows_written:13d}")
    print(f"{'plain requests + json (information)':38} {plain_wall:8.2f} {'':>7} {'':>6} "
          f"{'':>6} {plain_requests:9d} {minimum:8d}")
    repeated = [wall / bare for label, wall, _r, _s, bare, _c in rows if label != "first sync"]
    print(f"summary: first sync {rows[0][1] / rows[0][4]:.2f}x bare (goal 2.5), repeated sync "
          f"{min(repeated):.2f}x bare at best of {len(repeated)} (goal 1.5)")
    print("x bare: the sync's wall time over the mean of the reference runs before and after it;"
          " CPU s: of the tool's process (the fake LMS and the database server run in their own)."
          " The reference makes no token request (hence one request fewer than the minimum).")
    print(f"SQL: {rows[0][3][1]} parameter sets in the first sync, {rows[1][3][1]} in the "
          "repeated one (an executemany is one statement; COPY on PostgreSQL is not counted)")
    print(f"peak RSS of the tool process: {_kib_to_mib(rss_peak):.0f} MiB "
          f"(before syncing: {_kib_to_mib(rss_before):.0f} MiB)")
    print(f"peak Python heap during a full fetch-and-compare sync (tracemalloc): "
          f"{heap_peak / 2**20:.1f} MiB; rows written: {traced.rows_written}")
    os.environ.pop("LTI_TOOL_BENCH", None)


def _bench_institution(db):
    """The benchmark's institution (created once per database)."""
    from lti_tool.store.institutions import InstitutionSpec, create_institution, find_institution

    return find_institution(db, "bench") or create_institution(
        db, InstitutionSpec(slug="bench", name="Bench University", country="TR"))


if __name__ == "__main__":
    main()

