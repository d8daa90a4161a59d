"""Operations endpoints: `/health` (liveness), `/ready` (readiness), `/metrics` (Prometheus).

- `/health` answers 200 while the process serves requests; it does not touch the database, so
  a database outage never makes a load balancer or systemd restart healthy web processes.
- `/ready` answers 200 only when the database answers and its schema is not behind this
  node's code (a newer schema, during a rolling upgrade, is fine: migrations expand before
  they contract); 503 with the reason otherwise, so a load balancer stops sending traffic.
- `/metrics`: see `lti_tool.metrics`. With `LTI_TOOL_METRICS_TOKEN` set it needs
  `Authorization: Bearer <token>`; otherwise keep it off the public site (nginx example in the
  README).
"""

from __future__ import annotations

import hmac
import os
from functools import cache

from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from flask import request as flask_request
from sqlalchemy import func, select, text

from lti_tool import metrics
from lti_tool.jobs.office import backlog
from lti_tool.store.migrate import MIGRATIONS, alembic_config
from lti_tool.store.models.badges import Credential
from lti_tool.web.db import get_db

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@cache
def _script():


    config = alembic_config(None)
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def schema_problem(connection) -> str | None:
    """None when the schema is at this code's head or newer; else what is wrong."""
    from alembic.migration import MigrationContext

    current = set(MigrationContext.configure(connection).get_current_heads())
    script = _script()
    heads = set(script.get_heads())
    if not current:
        return "the database has no schema yet (run `lti-tool db upgrade`)"
    if current <= heads:
        return None
    if all(_known(script, rev) for rev in current):
        return (f"the schema is behind this version ({', '.join(sorted(current))} < "
                f"{', '.join(sorted(heads))}): run `lti-tool db upgrade`")
    return None  # a newer schema than this node knows: an upgrade is rolling out


def _known(script, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:  # a revision this node's code does not have (a newer one)
        return False


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    try:
        db = get_db()
        db.execute(text("SELECT 1"))
        problem = schema_problem(db.connection())
    except Exception as exc:  # any database failure means not ready
        problem = f"the database cannot be reached ({type(exc).__name__})"
    if problem:
        return jsonify({"status": "unavailable", "reason": problem}), 503
    return jsonify({"status": "ready"}), 200


def _figures() -> dict:

    runtime = current_app.extensions["lti_tool"]
    with runtime.sessions() as db:
        queue = backlog(db)
        credentials = db.scalar(select(func.count()).select_from(Credential)) or 0
    return {"jobs": queue.counts, "oldest_seconds": queue.age_seconds,
            "credentials": credentials}


@bp.get("/metrics")
def metrics_view() -> Response:
    token = os.environ.get("LTI_TOOL_METRICS_TOKEN")
    if token:
        given = flask_request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response("metrics need a bearer token\n", 401, mimetype="text/plain")
    body, content_type = metrics.exposition(metrics.DatabaseCollector(_figures))
    return Response(body, 200, content_type=content_type)
