"""Gradebook sync status and the "Sync now" action for the course's instructors.

"Sync now" stores a `grades.sync` job (`request_sync`, in the request's transaction) that a
worker runs. The page works without scripts (the button posts and the page reloads); with
scripts it polls `status.json` once a second, shows the sync waiting, then its progress while
it runs (from the database, so any web node answers), and reloads when it has ended.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.errors import BadRequest
from lti_tool.grades.passback import passback_status
from lti_tool.grades.sync import LEASE, lease_holder, progress_of, request_sync
from lti_tool.grades.sync.progress import WAITING, is_running
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import Context
from lti_tool.store.models.grades import SyncRun
from lti_tool.web.auth import Actor, require_actor, require_role, session_url
from lti_tool.web.db import get_db
from lti_tool.web.jinja import install_on_setup

bp = Blueprint("sync", __name__, url_prefix="/instructor/sync", template_folder="templates")
bp.record_once(install_on_setup)


def _context_id(actor: Actor) -> int:
    if actor.context_id is None:
        raise BadRequest(_("Open the tool from a course to see its gradebook sync."))
    return actor.context_id


def _run_json(run: SyncRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id, "status": run.status, "trigger": run.trigger,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "items": run.items_seen, "scores": run.scores_seen, "members": run.members_seen,
        "rows_written": run.rows_written, "error": run.error,
        "warnings": list(run.warnings or []),
    }


def _latest_runs(db: Session, context_id: int) -> tuple[SyncRun | None, SyncRun | None]:
    """The latest run and the latest successful one."""
    runs = db.scalars(select(SyncRun).where(SyncRun.context_id == context_id)
                      .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(20)).all()
    return (runs[0] if runs else None), next((r for r in runs if r.status == "succeeded"), None)


def sync_status(db: Session, context_id: int) -> dict[str, Any]:
    """What the page shows: the latest run, the latest success, and live progress.

    `running` is true while a sync waits or runs (the page refreshes when it turns false);
    `waiting` says it has not started yet.
    """
    live = progress_of(db, context_id) or {}
    last, success = _latest_runs(db, context_id)
    running = is_running(last.status if last else None, last.started_at if last else None,
                         lease_held=lease_holder(db, context_id) is not None,
                         live_state=live.get("state"), now=utcnow(), lease=LEASE)
    waiting = not running and live.get("state") == WAITING
    return {
        "running": running or waiting,
        "waiting": waiting,
        "progress": {k: live.get(k) for k in ("done", "total", "phase")} if running else None,
        "last": _run_json(last),
        "last_success": _run_json(success),
        "passback": passback_status(db, context_id),
    }


@bp.get("/")
@require_role("instructor", "admin")
def status() -> str:
    db = get_db()
    context_id = _context_id(require_actor())
    page = sync_status(db, context_id)
    last, success = _latest_runs(db, context_id)
    page.update(last_started=last.started_at if last else None,
                last_finished=last.finished_at if last else None,
                success_finished=success.finished_at if success else None)
    return render_template("sync/status.html", status=page)


@bp.get("/status.json")
@require_role("instructor", "admin")
def status_json() -> Any:
    return jsonify(sync_status(get_db(), _context_id(require_actor())))


@bp.post("/run")
@require_role("instructor", "admin")
def sync_now() -> Any:
    """Store a sync of the actor's course as a job (202); one that waits or runs is enough."""
    context_id = _context_id(require_actor())
    db = get_db()
    context = db.get(Context, context_id)
    if context is None:
        raise BadRequest(_("Open the tool from a course to see its gradebook sync."))
    started = request_sync(db, context, trigger="manual") is not None
    db.commit()
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        body = sync_status(db, context_id)
        body["started"] = started
        return jsonify(body), 202
    return redirect(session_url("sync.status"), code=303)
