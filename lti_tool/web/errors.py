"""Turn errors into a status code and a message: JSON for machines, a page for people."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from lti_tool.domain.errors import IllegalTransition, ValidationFailed
from lti_tool.errors import ToolError

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    if request.path.endswith(".json") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _reply(status: int, code: str, message: str, details: dict | None = None):
    if _wants_json():
        body: dict[str, Any] = {"error": code, "message": message}
        if details:
            body["details"] = details
        return jsonify(body), status
    return render_template("error.html", status=status, message=message, details=details), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ToolError)
    def tool_error(exc: ToolError):
        g.error_kind = exc.code  # counted by kind in /metrics
        return _reply(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(IllegalTransition)
    def illegal_transition(exc: IllegalTransition):
        return _reply(409, "conflict", str(exc))

    @app.errorhandler(ValidationFailed)
    def validation_failed(exc: ValidationFailed):
        return _reply(422, "invalid", "The input has problems.",
                      {p.path or "input": p.message for p in exc.problems})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _reply(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                      exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _reply(500, "internal_error", "Something went wrong on our side; it was logged.")
