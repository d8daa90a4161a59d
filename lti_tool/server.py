"""Serve the app with gunicorn (several worker processes) or, for one worker, in-process."""

from __future__ import annotations

import os
import tempfile

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from lti_tool.web import create_app

        return create_app()


def _child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def run_server(host: str, port: int, workers: int = 1, graceful_timeout: int = 30) -> None:
    """gunicorn: on SIGTERM it stops accepting, lets in-flight requests finish (up to
    `graceful_timeout` seconds), then exits; JSON logs; with several workers their metrics are
    aggregated through a shared `PROMETHEUS_MULTIPROC_DIR` (a temporary one unless set)."""
    from lti_tool.logs import setup_logging

    setup_logging()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lti-tool-metrics-")
    _Gunicorn({
        "bind": f"{host}:{port}", "workers": max(1, workers), "accesslog": "-", "timeout": 60,
        "graceful_timeout": graceful_timeout, "child_exit": _child_exit,
        "control_socket_disable": True,  # one per user otherwise: several nodes on one host
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms req=%({x-request-id}o)s',
    }).run()
