"""A SIGTERM to a scale run still stops what its fixtures started (tests/scale/conftest.py).

Quick, not marked `scale`: a pytest subprocess runs a tiny test file whose module fixture starts
a sleeping child in a session of its own (as tests/scale/cluster.py starts `serve` and `worker`)
and stops it in its finalizer; the subprocess gets SIGTERM in the middle of the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TINY_CONFTEST = """
from tests.scale.conftest import sigterm_runs_teardown  # noqa: F401
"""

TINY_TEST = """
import os, subprocess, sys, time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def child():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                               start_new_session=True)
    (HERE / "child.pid").write_text(str(process.pid))
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
        (HERE / "torn-down").write_text("yes")


def test_waits(child):
    (HERE / "running").write_text("yes")
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): it is gone for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.parametrize("with_handler", [True, False], ids=["handler", "without-handler"])
def test_sigterm_to_pytest_runs_the_finalizers(tmp_path: Path, with_handler: bool) -> None:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(TINY_CONFTEST) if with_handler else "")
    (tmp_path / "test_tiny.py").write_text(textwrap.dedent(TINY_TEST))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pid = None
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "running").exists():
            assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
            assert time.monotonic() < deadline, "the tiny test did not start"
            time.sleep(0.05)
        pid = int((tmp_path / "child.pid").read_text())
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=60)[0].decode()
        if with_handler:
            assert (tmp_path / "torn-down").exists(), output
            assert not _alive(pid), output
            assert "Terminated" in output or "KeyboardInterrupt" in output, output
        else:  # the control: without the handler the child is left behind
            assert run.returncode == -signal.SIGTERM, output
            assert not (tmp_path / "torn-down").exists(), output
            assert _alive(pid), output
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
