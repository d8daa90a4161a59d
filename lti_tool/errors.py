"""Errors that carry the HTTP status and a message a person can act on.

Services raise these; entry points translate them (web: status + page or JSON; CLI: exit 1 and
the message on standard error). Nothing here imports a framework.
"""

from __future__ import annotations


class ToolError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(ToolError):
    status = 400
    code = "bad_request"


class Unauthorized(ToolError):
    status = 401
    code = "unauthorized"


class Forbidden(ToolError):
    status = 403
    code = "forbidden"


class NotFound(ToolError):
    status = 404
    code = "not_found"


class Conflict(ToolError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ToolError):
    status = 413
    code = "payload_too_large"


class LaunchError(ToolError):
    """An LTI message that fails validation: 400 unless a subclass says otherwise."""

    code = "invalid_launch"
