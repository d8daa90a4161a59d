"""Graceful shutdown of real `lti-tool worker` and `lti-tool serve` processes: SIGTERM while
work is in flight, the work is finished, then the process exits 0.

The worker runs on the test database (the in-process runner on SQLite, procrastinate on
PostgreSQL); the in-flight job is a grade passback the fake LMS holds until the worker has
logged that it is stopping, so the stop is known to have come while the job was running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from lti_tool.grades import evaluation as ev
from tests.conftest import stamp_head
from tests.jobs.test_passback_queue import _course_ready_to_pass, _passback_jobs


class Output:
    """A child's output lines, read in a thread, waited on with a bound."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 120) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: any(text in line for line in self.lines),
                                         timeout):
                raise AssertionError(f"{text!r} never came:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _env(runtime, tmp_path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.getcwd(),
            "LTI_TOOL_DATABASE_URL": runtime.settings.database_url,
            "LTI_TOOL_DATA_DIR": str(tmp_path / "child"), "LTI_TOOL_SECRET_KEY": "test",
            "LTI_TOOL_LOG_FORMAT": "text", "LTI_TOOL_LOG_LEVEL": "INFO",
            "LTI_TOOL_SYNC_RETRY_ATTEMPTS": "2", "LTI_TOOL_SYNC_RETRY_BASE_DELAY": "0.01",
            "LTI_TOOL_OUTBOUND_ALLOW": runtime.settings.outbound_allow}


def test_a_stopped_worker_finishes_the_job_in_hand(fast_runtime, moodle_lms, tmp_path) -> None:
    runtime, fake = fast_runtime, moodle_lms
    _, offering_id, plan = _course_ready_to_pass(runtime, fake)
    stamp_head(runtime.engine)  # the worker migrates first; see test_passback_queue
    held = fake.hold("/scores", method="POST")
    worker = subprocess.Popen([sys.executable, "-m", "lti_tool.cli", "worker"],
                              env=_env(runtime, tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    output = Output(worker)
    try:
        with runtime.sessions() as db:  # the decision and its passback job, in one commit
            ev.save_mapping(db, runtime.settings, offering_id, plan["mapping"], plan["by"])
            db.commit()
        assert held.reached.wait(120), output.text  # the job is sending its first score
        worker.send_signal(signal.SIGTERM)
        output.wait_for("worker stopping")
        assert worker.poll() is None  # still finishing the job
        held.release()
        assert worker.wait(120) == 0, output.text
    finally:
        held.release()
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)
    output.thread.join(10)
    first, *later = _passback_jobs(runtime)
    assert first.status == "done", output.text  # finished, not abandoned to its lease
    # others were finished too if they were in hand (PostgreSQL runs 4 at once), or wait for
    # the next worker; none is left running on a worker that is gone
    assert {j.status for j in later} <= {"done", "waiting"}
    latest = {s["userId"]: s["scoreGiven"] for s in fake.posted_scores}
    assert (latest.get("4"), latest.get("5")) == (100.0, 0.0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_stopped_web_node_answers_the_request_in_flight(runtime, tmp_path) -> None:
    """gunicorn under `lti-tool serve`: a request whose client is still sending when SIGTERM
    arrives is answered in full; then the node exits 0."""
    stamp_head(runtime.engine)
    port = _free_port()
    serve = subprocess.Popen([sys.executable, "-m", "lti_tool.cli", "serve", "--port",
                              str(port)], env=_env(runtime, tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = Output(serve)
    try:
        deadline = time.monotonic() + 120
        while True:  # bounded: until the node's worker process answers (not only listens)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline and serve.poll() is None, output.text
                time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # not finished
            time.sleep(0.5)  # the idle worker process takes the connection
            serve.send_signal(signal.SIGTERM)
            output.wait_for("Handling signal: term")
            client.sendall(b"Connection: close\r\n\r\n")
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), (answer, output.text)
        assert answer.endswith(b'{"status":"ok"}\n'), answer
        assert serve.wait(60) == 0, output.text
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(30)
