"""Running one outbox job, whoever delivers it (procrastinate on PostgreSQL, the in-process
runner on SQLite), and the in-process runner itself.

`execute` claims the row with a conditional update (exactly one claimer wins, on both
databases), keeps its lease alive while the job function runs, and records the outcome: `done`,
or back to `waiting` with an exponential backoff (or the LMS's `Retry-After`), or `failed` with
the reason once `max_attempts` are spent. A worker killed mid-job leaves a lease that expires;
`recover_expired` puts such rows back to `waiting` (the job functions are idempotent: one
credential per learner and MC, one line item per offering, scores the LMS replaces).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from croniter import croniter
from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from lti_tool.jobs import outbox
from lti_tool.logs import JOB_ID, REQUEST_ID
from lti_tool.metrics import ERRORS, JOB_LATENCY, JOB_SECONDS
from lti_tool.runtime import Runtime
from lti_tool.store.db import utcnow
from lti_tool.store.models.jobs import DONE, FAILED, RUNNING, WAITING, Job

log = logging.getLogger(__name__)

JobFunction = Callable[[Runtime, dict[str, Any]], Any]


class RetryLater(Exception):
    """Raised by a job function whose work is not finished: try again (after `seconds`)."""

    def __init__(self, reason: str, seconds: float | None = None) -> None:
        super().__init__(reason)
        self.seconds = seconds


@dataclass(frozen=True)
class JobKind:
    """A job function registered by name, with its retry policy."""

    name: str
    function: JobFunction
    max_attempts: int = outbox.DEFAULT_MAX_ATTEMPTS
    backoff_base: float = 2.0  # seconds before the 2nd attempt; doubles each time
    backoff_cap: float = 600.0

    def backoff(self, attempts: int) -> float:
        return min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class Periodic:
    """Work scheduled by a cron expression (5 fields, or 6 with seconds), once per tick
    across all workers: the tick's time is part of the job's key."""

    kind: str
    cron: str
    payload: dict[str, Any] = field(default_factory=dict)

    def key(self, tick: datetime) -> str:
        return f"{self.kind}@{tick.strftime('%Y-%m-%dT%H:%M:%SZ')}"

    def latest_tick(self, now: datetime) -> datetime:
        return croniter(self.cron, now).get_prev(datetime)


@dataclass
class Registry:
    kinds: dict[str, JobKind]
    periodic: list[Periodic]

    def __post_init__(self) -> None:
        for spec in self.periodic:
            if spec.kind not in self.kinds:
                raise ValueError(f"periodic work {spec.kind!r} has no registered job function")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def lease_seconds(runtime: Runtime) -> float:
    return float(os.environ.get("LTI_TOOL_JOB_LEASE_SECONDS", "60"))


def claim(runtime: Runtime, job_id: int, name: str) -> Job | None:
    """Take the job if it is due (or its previous holder's lease expired); None otherwise."""
    now = utcnow()
    with runtime.sessions() as db:
        taken = cast("CursorResult[Any]", db.execute(
            update(Job).where(
                Job.id == job_id,
                or_((Job.status == WAITING) & (Job.run_after <= now),
                    (Job.status == RUNNING) & (Job.lease_until < now)))
            .values(status=RUNNING, attempts=Job.attempts + 1, worker=name, started_at=now,
                    lease_until=now + timedelta(seconds=lease_seconds(runtime)),
                    updated_at=now)
            .execution_options(synchronize_session=False))).rowcount
        db.commit()
        return db.get(Job, job_id) if taken == 1 else None


class _Lease(threading.Thread):
    """Renews a running job's lease until stopped (a killed process stops renewing)."""

    def __init__(self, runtime: Runtime, job_id: int, name: str) -> None:
        super().__init__(daemon=True, name=f"lease-{job_id}")
        self.runtime, self.job_id, self.name_ = runtime, job_id, name
        self.stopped = threading.Event()

    def run(self) -> None:
        seconds = lease_seconds(self.runtime)
        while not self.stopped.wait(seconds / 3):
            try:
                with self.runtime.sessions() as db:
                    db.execute(update(Job).where(Job.id == self.job_id, Job.worker == self.name_)
                               .values(lease_until=utcnow() + timedelta(seconds=seconds))
                               .execution_options(synchronize_session=False))
                    db.commit()
            except (OperationalError, DBAPIError):
                log.warning("could not renew the lease of job %s", self.job_id)


def execute(runtime: Runtime, registry: Registry, job_id: int, name: str | None = None) -> str:
    """Run outbox job `job_id` once if it can be claimed; returns what happened."""
    name = name or worker_name()
    job = claim(runtime, job_id, name)
    if job is None:
        return "not-claimed"
    spec = registry.kinds.get(job.kind)
    request_token, job_token = REQUEST_ID.set(job.request_id), JOB_ID.set(job.id)
    lease = _Lease(runtime, job.id, name)
    lease.start()
    started = time.monotonic()
    try:
        try:
            if spec is None:
                raise LookupError(f"no job function is registered for {job.kind!r}")
            # `_attempt` and `_job_id` tell a job function it may be finishing what a killed
            # attempt of this job began (the sync job reclaims its own lease by the job id)
            result = spec.function(runtime, {**(job.payload or {}), "_attempt": job.attempts,
                                             "_job_id": job.id})
        except Exception as exc:  # any failure is recorded on the row
            lease.stopped.set()
            ERRORS.labels(f"job_{job.kind}").inc()
            return _record_failure(runtime, job, spec, exc, name)
        lease.stopped.set()
        _finish(runtime, job.id, name, result)
        JOB_SECONDS.labels(job.kind).observe(time.monotonic() - started)
        JOB_LATENCY.labels(job.kind).observe((utcnow() - job.created_at).total_seconds())
        log.info("job %s (%s) done in %.3f s", job.id, job.kind, time.monotonic() - started,
                 extra={"kind": job.kind, "attempt": job.attempts})
        return DONE
    finally:
        lease.stopped.set()
        REQUEST_ID.reset(request_token)
        JOB_ID.reset(job_token)


def _finish(runtime: Runtime, job_id: int, name: str, result: Any) -> None:
    now = utcnow()
    stored = result if isinstance(result, dict) else ({"value": result} if result else None)
    with runtime.sessions() as db:
        db.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING)
                   .values(status=DONE, finished_at=now, lease_until=None, last_error="",
                           result=_jsonable(stored), updated_at=now)
                   .execution_options(synchronize_session=False))
        db.commit()


def _record_failure(runtime: Runtime, job: Job, spec: JobKind | None, exc: Exception,
                    name: str) -> str:
    now = utcnow()
    reason = (str(exc) or type(exc).__name__)[:2000]
    limit = spec.max_attempts if spec is not None else 1  # the registry's policy decides
    final = job.attempts >= limit
    delay = exc.seconds if isinstance(exc, RetryLater) and exc.seconds else None
    if delay is None and spec is not None:
        delay = spec.backoff(job.attempts)
    run_after = now + timedelta(seconds=delay or 0)
    with runtime.sessions() as db:
        db.execute(update(Job).where(Job.id == job.id, Job.status == RUNNING)
                   .values(status=FAILED if final else WAITING, last_error=reason,
                           max_attempts=limit,
                           lease_until=None, finished_at=now if final else None,
                           run_after=run_after, updated_at=now)
                   .execution_options(synchronize_session=False))
        if not final and db.get_bind().dialect.name == "postgresql":
            outbox.defer_on_connection(db, job.id, run_after)
        db.commit()
    level = logging.WARNING if isinstance(exc, RetryLater) or not final else logging.ERROR
    log.log(level, "job %s (%s) attempt %s %s: %s", job.id, job.kind, job.attempts,
            "failed for good" if final else f"will be retried in {delay:.1f} s", reason,
            exc_info=not isinstance(exc, RetryLater))
    return FAILED if final else "retry"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return str(value)


def retry(db: Any, job_id: int, *, platform_ids: set[int] | None = None) -> bool:
    """The Office's retry button: a failed job waits again with a fresh set of attempts."""
    query = select(Job).where(Job.id == job_id, Job.status == FAILED)
    if platform_ids is not None:
        query = query.where(Job.platform_id.in_(platform_ids))
    job = db.scalar(query)
    if job is None:
        return False
    job.status, job.attempts, job.run_after, job.finished_at = WAITING, 0, utcnow(), None
    db.flush()
    if db.get_bind().dialect.name == "postgresql":
        outbox.defer_on_connection(db, job.id, None)
    db.info[outbox._ENQUEUED] = True
    return True


def recover_expired(runtime: Runtime) -> int:
    """Rows whose worker died mid-job (lease expired) wait again; returns how many."""
    now = utcnow()
    with runtime.sessions() as db:
        stale = list(db.scalars(select(Job.id).where(Job.status == RUNNING,
                                                     Job.lease_until < now)))
        for job_id in stale:
            moved = cast("CursorResult[Any]", db.execute(
                update(Job).where(Job.id == job_id, Job.status == RUNNING, Job.lease_until < now)
                .values(status=WAITING, run_after=now, lease_until=None, updated_at=now,
                        last_error="the worker running it stopped; taken again")
                .execution_options(synchronize_session=False))).rowcount
            if moved and db.get_bind().dialect.name == "postgresql":
                outbox.defer_on_connection(db, job_id, None)
        db.commit()
    if stale:
        log.warning("%s job(s) of stopped workers are waiting again: %s", len(stale), stale)
    return len(stale)


def schedule_periodic(runtime: Runtime, registry: Registry, now: datetime | None = None,
                      ) -> list[int]:
    """Store the latest tick of every periodic job (a tick already stored is a no-op)."""
    now = now or utcnow()
    made = []
    with runtime.sessions() as db:
        for spec in registry.periodic:
            tick = spec.latest_tick(now)
            job_id = outbox.enqueue(db, spec.kind, dict(spec.payload), key=spec.key(tick),
                                    max_attempts=registry.kinds[spec.kind].max_attempts)
            if job_id is not None:
                made.append(job_id)
        db.commit()
    return made


def due_jobs(runtime: Runtime, limit: int = 20) -> list[int]:
    now = utcnow()
    with runtime.sessions() as db:
        return list(db.scalars(
            select(Job.id).where(or_((Job.status == WAITING) & (Job.run_after <= now),
                                     (Job.status == RUNNING) & (Job.lease_until < now)))
            .order_by(Job.run_after, Job.id).limit(limit)))


class InProcessRunner:
    """The runner for one machine (SQLite, the demo): polls the outbox, is woken at once by a
    commit in the same process that enqueued work, schedules periodic work, and on `stop()`
    finishes the job in hand before returning."""

    def __init__(self, runtime: Runtime, registry: Registry, *, poll: float = 1.0,
                 periodic: bool = True) -> None:
        self.runtime, self.registry, self.poll, self.periodic = runtime, registry, poll, periodic
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.name = worker_name()

    def run_once(self) -> int:
        """Schedule due periodic ticks, then run every due job; returns how many ran."""
        if self.periodic:
            schedule_periodic(self.runtime, self.registry)
        ran = 0
        while not self.stopping.is_set():
            batch = due_jobs(self.runtime)
            if not batch:
                break
            for job_id in batch:
                if self.stopping.is_set():
                    break
                if execute(self.runtime, self.registry, job_id, self.name) != "not-claimed":
                    ran += 1
        return ran

    def run_forever(self) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            outbox.WAKE.clear()
            try:
                self.run_once()
                backoff = 1.0
            except (OperationalError, DBAPIError) as exc:
                log.warning("job runner: database unavailable (%s); retrying in %.0f s",
                            type(exc).__name__, backoff)
                self.stopping.wait(backoff)
                backoff = min(30.0, backoff * 2)
                continue
            outbox.WAKE.wait(self.poll)

    def start(self) -> InProcessRunner:
        self.thread = threading.Thread(target=self.run_forever, name="job-runner", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        outbox.WAKE.set()
        if self.thread is not None:
            self.thread.join(timeout)
