"""Serve the app with gunicorn (several worker processes) or, for one worker, in-process."""

from __future__ import annotations

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


def run_server(host: str, port: int, workers: int = 1) -> None:
    _Gunicorn(
        {"bind": f"{host}:{port}", "workers": max(1, workers), "accesslog": "-", "timeout": 60}
    ).run()
