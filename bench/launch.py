"""Full LTI login + launch round trips per second, next to the bare RS256 verification floor.

Run: python bench/launch.py [--round-trips 200] [--workers 2] [--clients 4,32]
                            [--client-processes 2] [--warmup 5]
Uses a SQLite file in a temporary folder, or the PostgreSQL that LTI_TOOL_BENCH_DATABASE_URL
names (its tables are dropped and re-created). Measures, in one run and on the same id_token
shape (the captured Moodle instructor launch):

1. RS256 signature verification alone (jwcrypto, the library the tool verifies with);
2. `verify_id_token` (every check before the database writes, platform lookup included);
3. login + launch through the Flask test client, in process, one at a time;
4. login + launch over loopback HTTP against gunicorn with N worker processes and C clients
   (threads spread over --client-processes processes, plain http.client, each round trip a
   fresh browser), for the tool and, in the same run and at each concurrency level, the two
   references of bench/reference_apps.py: a bare pylti1p3 Flask tool with no database and the
   crypto+HTTP floor (one RS256 verify + one EdDSA sign).

For each served app it also prints the CPU time per round trip of the server (gunicorn
master + workers, from /proc) and of the clients: the clients share the machine's cores, so
a server's CPU shows what it costs whatever the load, and the clients' CPU bounds the ratio
any tool could reach against the bare tool on this machine.

The server's CPU is counted from the moment every worker has booted and gone idle (a worker
imports the app after the fork: over a second of CPU for the tool, which the first answer to
the probe does not wait for) and after `--warmup` untimed round trips per client (default 5:
each worker's first requests configure SQLAlchemy's mappers, compile statements and
templates); `--warmup 0` counts those first requests.

Client-side signing (the LMS's work) is excluded from the timed spans. Loops are bounded; the
server is stopped at the end. Prints a table; never fails on timings.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from jwcrypto import jwk, jws
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lti_tool.store.models  # noqa: F401
from lti_tool.launch.jwks_cache import JwksCache
from lti_tool.launch.validation import verify_id_token
from lti_tool.runtime import build_runtime
from lti_tool.settings import load_settings
from lti_tool.store.db import Base
from lti_tool.web import create_app
from testkit.lti import (
    LTI,
    PlatformKey,
    fixture_claims,
    platform_key,
    register_platform,
    sign,
)

FIXTURE = "moodle/id_token_instructor_resource_link.json"
ISSUER = "http://127.0.0.1:8100"
CLIENT_ID = "wIHNTU76CCVPeFh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _row(name: str, latencies: list[float], wall: float) -> tuple:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (name, len(latencies), len(latencies) / wall, statistics.median(ordered) * 1000,
            p99 * 1000)


def _timed(count: int, step: Callable[[int], float]) -> tuple[list[float], float]:
    """Run `step(i)` count times; each returns the seconds of its timed span."""
    started = time.perf_counter()
    spans = [step(i) for i in range(count)]
    return spans, time.perf_counter() - started


def _claims(platform, i: int, nonce: str) -> dict:
    claims = fixture_claims(FIXTURE, platform)
    claims["sub"] = f"user-{i % 50}"
    claims["nonce"] = nonce
    claims[LTI + "target_link_uri"] = os.environ["LTI_TOOL_BASE_URL"] + "/lti/launch"
    return claims


def bench_floor(platform, key, count: int) -> tuple:
    token = sign(_claims(platform, 0, "n"), key)
    public = jwk.JWK.from_json(key.key.export_public())

    def verify(_i: int) -> float:
        started = time.perf_counter()
        signed = jws.JWS()
        signed.deserialize(token)
        signed.verify(public, alg="RS256")
        return time.perf_counter() - started

    spans, _ = _timed(count, verify)
    return _row("RS256 verify only (jwcrypto)", spans, sum(spans))


def bench_validation(runtime, platform, key, count: int) -> tuple:
    token = sign(_claims(platform, 0, "n"), key)
    cache = JwksCache()
    with runtime.sessions() as db:
        def check(_i: int) -> float:
            started = time.perf_counter()
            verify_id_token(db, runtime.settings, token, cache)
            return time.perf_counter() - started

        spans, _ = _timed(count, check)
    return _row("verify_id_token (all checks, no writes)", spans, sum(spans))


def bench_in_process(runtime, platform, key, count: int) -> tuple:
    client = create_app(runtime=runtime).test_client()

    def round_trip(i: int) -> float:
        started = time.perf_counter()
        login = client.get("/lti/login", query_string={
            "iss": ISSUER, "client_id": CLIENT_ID, "login_hint": "1",
            "target_link_uri": runtime.settings.url("/lti/launch")})
        span = time.perf_counter() - started
        assert login.status_code == 302, (login.status_code, login.get_data(as_text=True)[-300:])
        params = {k: v[0] for k, v in parse_qs(urlparse(login.headers["Location"]).query).items()}
        token = sign(_claims(platform, i, params["nonce"]), key)
        started = time.perf_counter()
        response = client.post("/lti/launch", data={"id_token": token, "state": params["state"]})
        span += time.perf_counter() - started
        assert response.status_code == 303, response.get_data(as_text=True)[-900:]
        return span

    spans, _ = _timed(count, round_trip)
    return _row("login+launch in-process (test client)", spans, sum(spans)), _statements(
        runtime, round_trip)


def _statements(runtime, round_trip: Callable[[int], float], count: int = 20) -> tuple:
    """SQL statements and commits per repeat round trip (what the machine's load cannot blur)."""
    statements = commits = 0

    def on_statement(*_args) -> None:
        nonlocal statements
        statements += 1

    def on_commit(*_args) -> None:
        nonlocal commits
        commits += 1

    event.listen(runtime.engine, "before_cursor_execute", on_statement)
    event.listen(runtime.engine, "commit", on_commit)
    try:
        for i in range(count):
            round_trip(i)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", on_statement)
        event.remove(runtime.engine, "commit", on_commit)
    return statements / count, commits / count


def _cookie_header(response: http.client.HTTPResponse) -> str:
    """The name=value pairs of a response's Set-Cookie headers, as a Cookie request header."""
    return "; ".join(value.split(";", 1)[0] for value in response.headers.get_all("Set-Cookie")
                     or [])


def _round_trips(port: int, issuer: str, client_id: str, key_json: str, kid: str,
                 first: int, count: int) -> tuple[list[float], list[str]]:
    """One client: `count` login + launch round trips, each a fresh browser (no cookie jar
    kept between round trips), over plain http.client (one connection per request, as the
    sync gunicorn workers close each). Returns the timed spans and the failures."""
    base = f"http://127.0.0.1:{port}"
    key = PlatformKey(key=jwk.JWK.from_json(key_json), kid=kid)
    platform = SimpleNamespace(issuer=issuer, client_id=client_id)
    spans: list[float] = []
    errors: list[str] = []
    for i in range(first, first + count):
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/lti/login?" + urlencode({
            "iss": issuer, "client_id": client_id, "login_hint": "1",
            "target_link_uri": base + "/lti/launch"}))
        login = conn.getresponse()
        login.read()
        conn.close()
        span = time.perf_counter() - started
        if login.status != 302:
            errors.append(f"login {login.status}")
            continue
        query = parse_qs(urlparse(login.getheader("Location", "")).query)
        claims = _claims(platform, i, query["nonce"][0])
        claims[LTI + "target_link_uri"] = base + "/lti/launch"
        token = sign(claims, key)
        body = urlencode({"id_token": token, "state": query["state"][0]})
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/lti/launch", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": _cookie_header(login)})
        response = conn.getresponse()
        text = response.read()
        conn.close()
        span += time.perf_counter() - started
        if response.status == 303:
            spans.append(span)
        else:
            errors.append(f"launch {response.status}: {text[:120]!r}")
    return spans, errors


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process and its reaped children used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _server_cpu(master: int) -> float:
    """CPU seconds of a gunicorn master and its live workers (Linux /proc; 0.0 elsewhere)."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return _process_cpu(master) + sum(_process_cpu(int(child)) for child in children)
    except OSError:
        return 0.0


def _idle_server_cpu(master: int, workers: int, timeout: float = 60.0) -> float:
    """The server's CPU seconds once all `workers` have booted and it is idle: a worker imports
    the app after the fork (over a second of CPU for the tool), and the first worker to answer
    the probe does not mean the others have finished."""
    deadline = time.monotonic() + timeout
    before = _server_cpu(master)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            booted = len(Path(f"/proc/{master}/task/{master}/children").read_text().split())
        except OSError:
            return _server_cpu(master)  # no /proc: nothing to wait for
        now = _server_cpu(master)
        if booted >= workers and now - before < 0.01:
            return now
        before = now
    return before


def _client_process(port: int, issuer: str, client_id: str, key_json: str, kid: str,
                    first: int, threads: int,
                    per_client: int) -> tuple[list[float], list[str], float]:
    """`threads` clients in one process (the other processes run the rest); also the CPU
    seconds the process spent, the LMS's signing included."""
    cpu_started = time.process_time()
    results: list[tuple[list[float], list[str]]] = []

    def run(t: int) -> None:
        results.append(_round_trips(port, issuer, client_id, key_json, kid,
                                    first + t * per_client, per_client))

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return ([s for spans, _ in results for s in spans],
            [e for _, errors in results for e in errors], time.process_time() - cpu_started)


TOOL_APP = ("the tool (lti-tool serve)", "lti_tool.web:create_app()")
BARE_APP = ("bare pylti1p3 tool, no database", "bench.reference_apps:bare_tool()")
FLOOR_APP = ("floor: 1 RS256 verify + 1 EdDSA sign", "bench.reference_apps:floor()")


def bench_server(env: dict, platform, key, workers: int, clients: int,
                 per_client: int, app: tuple[str, str] = TOOL_APP,
                 client_processes: int = 2, warmup: int = 0) -> tuple:
    """Login + launch round trips over loopback against `app` (label, gunicorn app spec)
    served by gunicorn on a fresh port, from `clients` clients spread over
    `client_processes` processes (one Python process alone would be the bottleneck: its
    GIL serialises the clients' parsing and signing). `warmup` untimed round trips per client
    go first, so each worker's one-time costs (SQLAlchemy's mapper set-up and statement
    compilation, template compilation, key parsing) are not counted as a launch's."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", app[1]],
        env={**env, "LTI_TOOL_BASE_URL": base}, cwd=str(Path(__file__).resolve().parents[1]))
    try:
        for _ in range(150):
            try:
                requests.get(base + "/bench-probe", timeout=5)  # any answer (404): it is up
                break
            except requests.RequestException:
                time.sleep(0.2)
        processes = max(1, min(client_processes, clients))
        shares = [clients // processes + (1 if p < clients % processes else 0)
                  for p in range(processes)]
        key_json = key.key.export_private()
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(time.sleep, [0.1] * processes))  # up before the timing starts
            _idle_server_cpu(server.pid, workers)  # every worker booted: the warm-up meets each
            if warmup:
                for future in [pool.submit(_client_process, port, platform.issuer,
                                           platform.client_id, key_json, key.kid,
                                           10**6 + sum(shares[:p]) * warmup, share, warmup)
                               for p, share in enumerate(shares)]:
                    future.result()
            server_cpu = _idle_server_cpu(server.pid, workers)
            started = time.perf_counter()
            futures = [pool.submit(_client_process, port, platform.issuer, platform.client_id,
                                   key_json, key.kid, sum(shares[:p]) * per_client, share,
                                   per_client)
                       for p, share in enumerate(shares)]
            results = [future.result() for future in futures]
            wall = time.perf_counter() - started
            server_cpu = _server_cpu(server.pid) - server_cpu
        spans = [s for got, _, _ in results for s in got]
        errors = [e for _, failed, _ in results for e in failed]
        client_cpu = sum(cpu for _, _, cpu in results)
        if errors:
            print(f"  {len(errors)} failed round trips, e.g. {errors[0]}", file=sys.stderr)
        # Throughput over the wall time, which includes the clients' own signing.
        done = max(1, len(spans))
        return (*_row(f"{app[0]}: {workers} w x {clients} clients", spans, wall),
                1000 * server_cpu / done, 1000 * client_cpu / done)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--verifications", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=lambda text: [int(c) for c in text.split(",")],
                        default=[4, 32], help="concurrency levels, e.g. 4,32")
    parser.add_argument("--client-processes", type=int, default=2,
                        help="processes the clients are spread over")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed round trips per client before the timed ones (each "
                             "worker's one-time costs); 0 counts them")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("LTI_TOOL_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
        base_url = f"http://127.0.0.1:{_free_port()}"
        overrides = {"database_url": url, "data_dir": tmp, "secret_key": "bench",
                     "base_url": base_url, "key_storage": "database",
                     # the limiter stays on (its counters are part of a launch's cost), with a
                     # limit the benchmark's one client address never reaches
                     "rate_limit_login": "1000000/minute",
                     # the instructor fixture would start a background gradebook sync from
                     # every launch (refused by the outbound guard here): not the launch's cost
                     "sync_after_launch": False}
        os.environ["LTI_TOOL_BASE_URL"] = base_url  # the launch URL the claims target
        settings = load_settings(overrides=overrides, environ={})
        runtime = build_runtime(settings)
        Base.metadata.drop_all(runtime.engine)
        Base.metadata.create_all(runtime.engine)
        key = platform_key("bench")
        with runtime.sessions() as db:
            platform = register_platform(db, issuer=ISSUER, client_id=CLIENT_ID, key=key,
                                         lms_kind="moodle")
            db.expunge(platform)
        rows = [
            bench_floor(platform, key, options.verifications),
            bench_validation(runtime, platform, key, options.verifications // 4),
        ]
        in_process, (statements, commits) = bench_in_process(runtime, platform, key,
                                                             options.round_trips)
        rows.append(in_process)
        env = {**os.environ, **{f"LTI_TOOL_{k.upper()}": str(v) for k, v in overrides.items()},
               "LTI_BENCH_ISSUER": ISSUER, "LTI_BENCH_CLIENT_ID": CLIENT_ID,
               "LTI_BENCH_DEPLOYMENT_ID": "1", "LTI_BENCH_AUTH_URL": ISSUER + "/auth",
               "LTI_BENCH_PLATFORM_JWKS": json.dumps(key.jwks),
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        served: dict[tuple[str, int], tuple] = {}
        for clients in options.clients:
            per_client = max(1, options.round_trips // clients)
            # interleaved per concurrency level: the three apps see the same machine load
            for app in (TOOL_APP, BARE_APP, FLOOR_APP):
                served[(app[0], clients)] = bench_server(env, platform, key, options.workers,
                                                         clients, per_client, app,
                                                         options.client_processes,
                                                         options.warmup)
                rows.append(served[(app[0], clients)])
        runtime.engine.dispose()
    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\nLTI launch benchmark ({database}, {os.cpu_count()} CPUs, {options.warmup} untimed "
          "round trips per client first)")
    print(f"{'scenario':<48} {'n':>6} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'server CPU ms':>14} {'client CPU ms':>14}")
    for name, n, rate, p50, p99, *cpu in rows:
        per_trip = "".join(f" {ms:>14.2f}" for ms in cpu)
        print(f"{name:<48} {n:>6} {rate:>9.1f} {p50:>8.2f} {p99:>8.2f}{per_trip}")
    print("(server CPU: the gunicorn master and workers per round trip, from /proc; client CPU:"
          " the clients' processes per round trip, the LMS's RS256 signing included)")
    print(f"\nSQL statements per repeat login + launch: {statements:.0f}, commits: {commits:.0f}"
          " (the rate-limit counter's included)")
    print("\nIssue 19 launch goals, against the references measured in this run:")
    for clients in options.clients:
        tool = served[(TOOL_APP[0], clients)]
        bare = served[(BARE_APP[0], clients)]
        floor = served[(FLOOR_APP[0], clients)]
        print(f"  {clients:>2} clients: tool / bare pylti1p3 = {tool[2] / bare[2]:.2f}x "
              "(goal >= 2x); "
              f"tool / floor = {100 * tool[2] / floor[2]:.0f} % (goal >= 40 %); "
              f"tool p99 {tool[4]:.0f} ms" + (" (goal < 100 ms)" if clients >= 32 else ""))
        if tool[5] and bare[5]:
            # The clients share the cores: even a tool costing nothing could not exceed
            # (client + bare server) / client times the bare tool's rate here.
            print(f"      server CPU per round trip: bare pylti1p3 / tool = "
                  f"{bare[5] / tool[5]:.2f}x (the throughput ratio if the LMS ran elsewhere);"
                  f" on this machine no tool could pass {(bare[6] + bare[5]) / bare[6]:.2f}x"
                  " the bare tool (its clients' CPU)")


if __name__ == "__main__":
    main()
