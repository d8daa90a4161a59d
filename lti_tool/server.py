"""Serve the app with gunicorn (several worker processes) or, for one worker, in-process."""

from __future__ import annotations

import os
import tempfile

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from lti_tool.logs import setup_logging
from lti_tool.web import create_app
from lti_tool.web.accesslog import redact_request_line, redact_url


class RedactingLogger(Logger):
    """gunicorn's logger whose access-log atoms never show a session, code or token."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = redact_request_line(atoms.get("r", "-"))
        atoms["U"] = redact_url(atoms.get("U", "-"))
        atoms["q"] = "" if atoms.get("q") else atoms.get("q", "")
        atoms["f"] = redact_url(atoms.get("f", "-"))
        for key in list(atoms):
            if key.lower() == "{referer}i":
                atoms[key] = redact_url(atoms[key])
        return atoms


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app()


def _child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def gunicorn_options(host: str, port: int, workers: int = 1, graceful_timeout: int = 30) -> dict:
    """gunicorn: on SIGTERM it stops accepting, lets in-flight requests finish (up to
    `graceful_timeout` seconds), then exits; the access log is redacted (RedactingLogger)."""
    return {
        "bind": f"{host}:{port}", "workers": max(1, workers), "accesslog": "-", "timeout": 60,
        "graceful_timeout": graceful_timeout, "child_exit": _child_exit,
        "control_socket_disable": True,  # one per user otherwise: several nodes on one host
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s "%(f)s" %(M)sms req=%({x-request-id}o)s',
        "logger_class": RedactingLogger,
    }


def run_server(host: str, port: int, workers: int = 1, graceful_timeout: int = 30) -> None:
    """JSON logs; with several workers their metrics are aggregated through a shared
    `PROMETHEUS_MULTIPROC_DIR` (a temporary one unless set)."""
    setup_logging()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lti-tool-metrics-")
    _Gunicorn(gunicorn_options(host, port, workers, graceful_timeout)).run()
