"""Serve the app with gunicorn (several worker processes) or, for one worker, in-process."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

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
        from lti_tool.web import create_app

        return create_app()


def gunicorn_options(host: str, port: int, workers: int = 1) -> dict:
    return {"bind": f"{host}:{port}", "workers": max(1, workers), "accesslog": "-",
            "timeout": 60, "logger_class": RedactingLogger}


def run_server(host: str, port: int, workers: int = 1) -> None:
    _Gunicorn(gunicorn_options(host, port, workers)).run()
