"""`lti-tool worker` on PostgreSQL: procrastinate runs the outbox's jobs.

procrastinate brings what a queue shared by many machines needs: a job is fetched by exactly
one worker (`SELECT … FOR UPDATE SKIP LOCKED`), workers are woken by LISTEN/NOTIFY the moment
a job commits, periodic tasks are deferred once per tick across all workers (its
`procrastinate_periodic_defers` table), workers send heartbeats so the jobs of a killed worker
can be found, and SIGTERM/SIGINT stop a worker gracefully after its running jobs finish.

Each procrastinate job carries only an outbox id; the outbox row keeps the state the Office
sees, the attempts and the backoff (`lti_tool.jobs.runner.execute`). A worker that loses the
database (PostgreSQL restarted) starts again by itself after a short pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

from lti_tool.jobs import outbox, runner
from lti_tool.jobs.registry import registry
from lti_tool.runtime import Runtime

log = logging.getLogger(__name__)
RECOVER_CRON = os.environ.get("LTI_TOOL_JOB_RECOVER_CRON", "*/10 * * * * *")
STALLED_SECONDS = float(os.environ.get("LTI_TOOL_WORKER_STALLED_SECONDS", "30"))


def conninfo(runtime: Runtime) -> str:
    """A libpq URL for procrastinate from the SQLAlchemy one."""
    url = runtime.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def build_app(runtime: Runtime) -> Any:
    import procrastinate
    from procrastinate import exceptions
    from procrastinate import jobs as jobs_module

    jobs = registry()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=conninfo(runtime), kwargs={"connect_timeout": 5}))
    name = runner.worker_name()

    @app.task(name=outbox.RUN_TASK, queue=outbox.QUEUE, pass_context=True)
    def run_job(context: Any, job_id: int) -> str:
        return runner.execute(runtime, jobs, job_id, f"{name}:{context.job.id}")

    for spec in jobs.periodic:
        _periodic(app, runtime, jobs, spec)

    @app.periodic(cron=RECOVER_CRON, periodic_id="recover")
    @app.task(name="lti_tool.recover", queue=outbox.QUEUE, pass_context=True)
    async def recover(context: Any, timestamp: int) -> int:
        """Outbox rows whose lease expired wait again; procrastinate jobs of workers that
        stopped sending heartbeats are retried (they find their row taken and do nothing)."""
        moved = await asyncio.to_thread(runner.recover_expired, runtime)
        manager = context.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_SECONDS):
            if job.id == context.job.id:
                continue
            try:
                await manager.retry_job(job)
            except exceptions.UniqueViolation:  # its outbox row was handed over again already
                await manager.finish_job(job, status=jobs_module.Status.ABORTED,
                                         delete_job=False)
        return moved

    return app


def _periodic(app: Any, runtime: Runtime, jobs: runner.Registry, spec: runner.Periodic) -> None:
    """One procrastinate periodic task per periodic job: each tick stores an outbox job whose
    key is the tick, so a tick runs once however many workers saw it."""
    task_name = f"lti_tool.periodic.{spec.kind}"

    def tick(timestamp: int) -> int | None:
        when = datetime.fromtimestamp(timestamp, UTC)
        with runtime.sessions() as db:
            job_id = outbox.enqueue(db, spec.kind, dict(spec.payload), key=spec.key(when),
                                    max_attempts=jobs.kinds[spec.kind].max_attempts)
            db.commit()
        return job_id

    app.periodic(cron=spec.cron, periodic_id=spec.kind)(
        app.task(name=task_name, queue=outbox.QUEUE)(tick))


def run(runtime: Runtime, *, concurrency: int = 4, graceful_timeout: float = 60.0) -> None:
    """Run until SIGTERM/SIGINT (the jobs in hand are finished first). procrastinate stops a
    worker whose database connection broke; this loop starts it again after a pause (1 s,
    doubling, at most 30 s), so a PostgreSQL restart needs nobody."""
    asyncio.run(_supervise(runtime, concurrency, graceful_timeout))


async def _supervise(runtime: Runtime, concurrency: int, graceful_timeout: float) -> None:
    loop = asyncio.get_running_loop()
    asked = asyncio.Event()
    current: list[asyncio.Task] = []

    def ask_stop() -> None:
        log.info("worker stopping: no new jobs; finishing the jobs in hand (at most %.0f s)",
                 graceful_timeout)
        asked.set()
        for task in current:
            task.cancel()  # procrastinate turns this into a graceful stop

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, ask_stop)
    pause = 1.0
    while not asked.is_set():
        started = time.monotonic()
        try:
            app = build_app(runtime)
            async with app.open_async():
                task = asyncio.create_task(app.run_worker_async(
                    queues=[outbox.QUEUE], concurrency=concurrency, wait=True,
                    install_signal_handlers=False, shutdown_graceful_timeout=graceful_timeout,
                    update_heartbeat_interval=float(os.environ.get(
                        "LTI_TOOL_WORKER_HEARTBEAT_SECONDS", "5")),
                    stalled_worker_timeout=STALLED_SECONDS, name=runner.worker_name()))
                current[:] = [task]
                await task
        except asyncio.CancelledError:
            if asked.is_set():
                return
        except Exception as exc:  # the database went away: start again
            log.warning("worker stopped: %s: %s", type(exc).__name__, exc)
        finally:
            current.clear()
        if asked.is_set():
            return
        if time.monotonic() - started > 60:
            pause = 1.0
        log.warning("the worker lost the database; starting again in %.0f s", pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asked.wait(), timeout=pause)
        pause = min(30.0, pause * 2)
