"""Render time and query count of the pages on a big course (1,000 learners x 10 outcomes).

Run: python bench/pages.py [--learners 1000] [--outcomes 10] [--repeat 10]
Uses a SQLite file in a temporary folder, or the PostgreSQL that LTI_TOOL_BENCH_DATABASE_URL
names (its tables are dropped and re-created). Prints a table; never fails on timings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lti_tool.store.models  # noqa: F401
from lti_tool.runtime import build_runtime
from lti_tool.settings import load_settings
from lti_tool.store.db import Base
from lti_tool.web import create_app
from lti_tool.web.auth import COOKIE_NAME
from testkit.seed import seed_course, seed_many_decisions, seed_offering


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--outcomes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=10)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("LTI_TOOL_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
        settings = load_settings(overrides={"database_url": url, "data_dir": tmp,
                                            "testing": True, "secret_key": "bench"}, environ={})
        runtime = build_runtime(settings)
        Base.metadata.drop_all(runtime.engine)
        Base.metadata.create_all(runtime.engine)
        started = time.perf_counter()
        with runtime.sessions() as db:
            course = seed_offering(db, seed_course(db, learners=options.learners),
                                   outcomes=options.outcomes)
            seed_many_decisions(db, course)
        seed_seconds = time.perf_counter() - started

        queries = {"n": 0}

        @event.listens_for(runtime.engine, "before_cursor_execute")
        def _count(*_args) -> None:
            queries["n"] += 1

        app = create_app(runtime=runtime)
        client = app.test_client()
        pages = [
            ("instructor overview", "/instructor/", "instructor", {}),
            ("overview, sorted by LO5, failed only", "/instructor/", "instructor",
             {"sort": "LO5", "dir": "desc", "show": "failed"}),
            ("overview CSV export", "/instructor/overview.csv", "instructor", {}),
            ("learner home", "/learner/", "learner1", {}),
            ("Office home", "/admin/", "admin", {}),
        ]
        print(f"database: {url.split(':', 1)[0]}  learners: {options.learners}  "
              f"outcomes: {options.outcomes}  seeded in {seed_seconds:.1f} s  "
              f"repeats: {options.repeat}")
        print(f"{'page':40} {'status':>6} {'KiB':>7} {'queries':>8} {'p50 ms':>8} {'max ms':>8}")
        for label, path, who, args in pages:
            query = args
            client.set_cookie(COOKIE_NAME, course.tokens[who])
            client.get(path, query_string=query)  # warm the template cache
            timings, counts = [], []
            for _ in range(options.repeat):
                queries["n"] = 0
                begin = time.perf_counter()
                reply = client.get(path, query_string=query)
                timings.append((time.perf_counter() - begin) * 1000)
                counts.append(queries["n"])
            print(f"{label:40} {reply.status_code:>6} {len(reply.data) / 1024:>7.0f} "
                  f"{max(counts):>8} {statistics.median(timings):>8.1f} {max(timings):>8.1f}")
        runtime.engine.dispose()


if __name__ == "__main__":
    main()
