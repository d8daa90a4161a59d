"""Fixtures for registration tests: a real HTTP server thread for fake platforms."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from lti_tool.settings import Settings
from tests.loopback import allow_loopback_fakes


class LiveServer:
    """A WSGI app served on a free loopback port in a daemon thread."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], LiveServer]]:
    started: list[LiveServer] = []

    def start(app: Flask) -> LiveServer:
        server = LiveServer(app)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The fakes of these tests run on loopback: the tool may call them (and nothing else).
    Dynamic Registration's mechanics are tested under `open` (registrations pending); the
    default `invite` and the trust model have their own tests (test_trust_model.py)."""
    import dataclasses

    return dataclasses.replace(allow_loopback_fakes(settings), dynamic_registration="open")
