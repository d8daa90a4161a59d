"""Structured (JSON) logs with a request id that follows a request into the jobs it starts.

`REQUEST_ID` is a context variable: the web app sets it for each request (from a sane
`X-Request-Id` header, or a new one), `lti_tool.jobs.enqueue` stores it on the job row, and the
job runner sets it again while the job runs, so one id links the launch, the sync it started
and the grade passback that followed.

`setup_logging()` is called by the entry points (serve, worker, demo). `LTI_TOOL_LOG_FORMAT`
= `json` (default for serve and worker) or `text`; `LTI_TOOL_LOG_LEVEL` (default INFO).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str | None] = ContextVar("lti_tool_request_id", default=None)
JOB_ID: ContextVar[int | None] = ContextVar("lti_tool_job_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def new_request_id(offered: str | None = None) -> str:
    """The id a proxy gave (`X-Request-Id`) when it looks like one, else a new random one."""
    if offered and _SANE_ID.match(offered):
        return offered
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Adds `request_id` and `job_id` to every record (None outside a request or a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.job_id = JOB_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, job_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "job_id": getattr(record, "job_id", None),
            "process": record.process,
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry:
                entry[name] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(default_format: str = "json") -> None:
    """Configure the root logger once for a process (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_lti_tool", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._lti_tool = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    fmt = os.environ.get("LTI_TOOL_LOG_FORMAT", default_format)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s job=%(job_id)s] %(message)s"))
    root.addHandler(handler)
    root.setLevel(os.environ.get("LTI_TOOL_LOG_LEVEL", "INFO").upper())
