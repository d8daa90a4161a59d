"""Durable background jobs (the outbox and its runners).

The API for every package: `enqueue(db, kind, payload, *, key, run_after=None)`, called inside
the caller's transaction. Importing this package imports only the outbox (store level), so any
layer may call it; the runners and the registry of job functions (`lti_tool.jobs.registry`,
`lti_tool.jobs.runner`, `lti_tool.jobs.worker`) are entry points and import the services.
"""

from lti_tool.jobs.outbox import enqueue

__all__ = ["enqueue"]
