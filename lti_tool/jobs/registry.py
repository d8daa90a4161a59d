"""Every job function, registered explicitly by name, and the periodic work.

Job functions take `(runtime, payload)` and do their work in their own transactions; they are
idempotent (the outbox may deliver a job again after a worker died mid-way). Adding work:
write the function in its package (a service call), add a `JobKind` here, and enqueue it with
`lti_tool.jobs.enqueue(db, "<kind>", payload, key=...)` in the transaction that calls for it,
or add a `Periodic` entry.

The registry is an entry point (the layer contract puts it above every service package), so
it imports the job functions at the top like any caller; the services never import it, they
only `enqueue` by name through the outbox (`lti_tool.jobs`, store level).
"""

from __future__ import annotations

from typing import Any

from lti_tool.catalogue.jobs import lapse_overdue_job as lapse_overdue
from lti_tool.grades.decisions import evaluate_changed
from lti_tool.grades.evidence_jobs import daily_evidence
from lti_tool.grades.jobs import scheduled_sync
from lti_tool.grades.passback import send_passbacks
from lti_tool.grades.sync import SyncBusy, sync_context
from lti_tool.grades.windows import close_due_windows
from lti_tool.jobs.office import purge_finished
from lti_tool.jobs.runner import JobKind, Periodic, Registry, RetryLater
from lti_tool.launch.jobs import prune_job as prune_launch_state
from lti_tool.reports.jobs import follow_up_job
from lti_tool.runtime import Runtime


def passback_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, int]:
    """Send a course's queued scores (`context_id`), or every course's (none given)."""
    with runtime.sessions() as db:
        counts = send_passbacks(db, runtime.settings, context_id=payload.get("context_id"),
                                limit=int(payload.get("limit", 500)))
        db.commit()
    if counts["failed"] and payload.get("context_id") is not None:
        raise RetryLater(f"{counts['failed']} score(s) could not be sent yet "
                         f"({counts['sent']} sent)", seconds=counts.get("retry_after"))
    return counts


def sync_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    """Sync one course's gradebook (`context_id`); a sync already running there is enough.

    A sync commits the marks, then evaluates the learners whose marks changed. A worker killed
    between the two leaves marks that the next sync no longer sees as changed, so an attempt
    after the first evaluates the whole course once more (idempotent: unchanged decisions stay).
    A worker killed during the sync leaves its lease behind: the next attempt of this job takes
    it over (the lease names the job) instead of finding "a sync already running" and ending.
    """
    context_id = int(payload["context_id"])
    holder = f"job-{payload['_job_id']}-" if payload.get("_job_id") is not None else ""
    try:
        result = sync_context(runtime, context_id, trigger=str(payload.get("trigger", "job")),
                              holder=holder)
    except SyncBusy:
        return {"status": "skipped", "reason": "a sync of this course was already running"}
    if result.status == "failed":
        raise RetryLater(f"sync failed: {result.error}")
    if int(payload.get("_attempt", 1)) > 1:
        with runtime.sessions() as db:
            evaluate_changed(db, runtime.settings, context_id, None)
            db.commit()
    return {"status": result.status, "items": result.items, "scores": result.scores}


def scheduled_sync_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, int]:
    return scheduled_sync(runtime)


def close_windows_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    with runtime.sessions() as db:
        summary = close_due_windows(db, None, runtime.settings)
        db.commit()
    return {"summary": str(summary)}


def lapse_overdue_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    return {"lapsed": lapse_overdue(runtime)}


def purge_jobs_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, int]:
    with runtime.sessions() as db:
        removed = purge_finished(db, days=int(payload.get("days", 14)))
        db.commit()
    return {"removed": removed}


def evidence_daily_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    """Retention purge, then a signed checkpoint of every evidence chain."""
    return daily_evidence(runtime)


def prune_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, int]:
    """Expired login states, nonces, rate-limit windows and invites."""
    return prune_launch_state(runtime)


def follow_ups_job(runtime: Runtime, payload: dict[str, Any]) -> dict[str, int]:
    """Employability follow-ups that fell due (6 and 12 months after issue), e-mailed."""
    return follow_up_job(runtime)


KINDS = [
    JobKind("grades.passback", passback_job, max_attempts=8, backoff_base=2.0,
            backoff_cap=300.0),
    JobKind("grades.sync", sync_job, max_attempts=3, backoff_base=30.0),
    JobKind("grades.scheduled_sync", scheduled_sync_job, max_attempts=1),
    JobKind("grades.close_windows", close_windows_job, max_attempts=3),
    JobKind("catalogue.lapse_overdue", lapse_overdue_job, max_attempts=3, backoff_base=60.0),
    JobKind("jobs.purge", purge_jobs_job, max_attempts=2),
    JobKind("evidence.daily", evidence_daily_job, max_attempts=3, backoff_base=300.0),
    JobKind("launch.prune", prune_job, max_attempts=2),
    JobKind("reports.follow_ups", follow_ups_job, max_attempts=3, backoff_base=600.0),
]

PERIODIC = [
    # every minute: the scheduled sync picks the courses whose interval has passed
    Periodic("grades.scheduled_sync", "* * * * *"),
    Periodic("grades.close_windows", "*/5 * * * *"),
    # a safety net for scores whose own job gave up (the LMS was down for long)
    Periodic("grades.passback", "*/15 * * * *"),
    Periodic("catalogue.lapse_overdue", "15 2 * * *"),
    Periodic("jobs.purge", "40 3 * * *"),
    Periodic("evidence.daily", "30 2 * * *"),
    Periodic("launch.prune", "*/15 * * * *"),
    Periodic("reports.follow_ups", "40 * * * *"),
]


def registry() -> Registry:
    return Registry(kinds={kind.name: kind for kind in KINDS}, periodic=list(PERIODIC))
