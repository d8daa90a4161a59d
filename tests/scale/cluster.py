"""A small production on one machine, loopback only: its own PostgreSQL cluster, N `lti-tool
serve` processes, M `lti-tool worker` processes and fake LMSs (tests/fakelms) in this process.

Every loop here is bounded in time; every process is stopped at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
# The nodes listen on this port and the next two (LTI_TOOL_SCALE_BASE_PORT moves them).
SERVE_BASE_PORT = int(os.environ.get("LTI_TOOL_SCALE_BASE_PORT", "8180"))


def wait_until(check: Callable[[], object], *, timeout: float, step: float = 0.25,
               what: str = "a condition") -> float:
    """Poll `check` until it is truthy; returns the seconds waited (bounded by `timeout`)."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except Exception:  # not yet: the thing is starting or restarting
            pass
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(step)


@dataclass
class Postgres:
    directory: str
    url: str

    @classmethod
    def start(cls) -> Postgres:
        out = subprocess.run(["bash", str(ROOT / "tests" / "pg.sh")], check=True,
                             capture_output=True, text=True).stdout.split()
        return cls(directory=out[0], url=out[1])

    def _ctl(self, *args: str) -> None:
        owner = Path(self.directory).owner()
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        command = [str(bindir / "pg_ctl"), "-D", f"{self.directory}/data", *args]
        if os.getuid() == 0:
            command = ["runuser", "-u", owner, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def stop_server(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def start_server(self) -> None:
        """Start again with the options tests/pg.sh gave it (pg_ctl does not keep them)."""
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        options = (f"-p {port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._ctl("-w", "-l", f"{self.directory}/server.log", "-o", options, "start")

    def remove(self) -> None:
        subprocess.run(["bash", str(ROOT / "tests" / "pg.sh"), "stop", self.directory],
                       check=False, capture_output=True, timeout=120)


@dataclass
class Cluster:
    env: dict[str, str]
    log_dir: Path
    serve: dict[int, subprocess.Popen] = field(default_factory=dict)
    workers: list[subprocess.Popen] = field(default_factory=list)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("ab")
        return subprocess.Popen([sys.executable, "-c", "from lti_tool.cli import main; main()",
                                 *args], env=self.env, cwd=str(ROOT), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def start_serve(self, port: int) -> None:
        self.serve[port] = self._spawn(f"serve-{port}", "serve", "--port", str(port),
                                       "--workers", "1")

    def start_worker(self) -> subprocess.Popen:
        worker = self._spawn(f"worker-{len(self.workers)}", "worker", "--concurrency", "4")
        self.workers.append(worker)
        return worker

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in sorted(self.serve)]

    def ready(self, port: int) -> bool:
        return requests.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200

    def wait_ready(self, timeout: float = 240) -> None:
        for port in self.serve:
            wait_until(lambda p=port: self.ready(p), timeout=timeout, what=f"node {port}")

    def restart_serve(self, port: int) -> float:
        """SIGTERM (gunicorn finishes in-flight requests), start again, wait until ready."""
        process = self.serve[port]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
        started = time.monotonic()
        self.start_serve(port)
        wait_until(lambda: self.ready(port), timeout=240, what=f"node {port} back")
        return time.monotonic() - started

    def kill_worker(self, worker: subprocess.Popen) -> None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

    def stop(self) -> None:
        for process in [*self.serve.values(), *self.workers]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.serve.values(), *self.workers]:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def metric(self, name: str) -> float:
        body = requests.get(self.urls[0] + "/metrics", timeout=10).text
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)
