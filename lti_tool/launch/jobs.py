"""Pruning what unauthenticated endpoints leave behind: expired login states and used nonces
(`/lti/login`, `/lti/launch`), ended rate-limit windows, expired registration invites.

`prune_expired_state(db, now)` is the function; the durable job runner runs `prune_job` every
15 minutes as `launch.prune` (`lti_tool.jobs.registry`). Pending Dynamic Registrations that
were never approved are pruned by their owner's function, called from here (`PRUNE_STEPS`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from lti_tool.runtime import Runtime
from lti_tool.store.db import changed_rows, transaction, utcnow
from lti_tool.store.models.core import (
    LoginState,
    RateLimitCounter,
    RegistrationInvite,
    UsedNonce,
)

log = logging.getLogger(__name__)
JOB_ID = "launch.prune_expired_state"
INTERVAL_MINUTES = 15


def _login_states(db: Session, now: datetime) -> int:
    return changed_rows(db, delete(LoginState).where(LoginState.expires_at < now))


def _nonces(db: Session, now: datetime) -> int:
    return changed_rows(db, delete(UsedNonce).where(UsedNonce.expires_at < now))


def _rate_counters(db: Session, now: datetime) -> int:
    return changed_rows(db, delete(RateLimitCounter).where(
        RateLimitCounter.expires_at <= now.timestamp()))


def _invites(db: Session, now: datetime) -> int:
    """Unused invites past their expiry (used ones stay: they record who registered how)."""
    return changed_rows(db, delete(RegistrationInvite).where(
        RegistrationInvite.expires_at < now, RegistrationInvite.used_at.is_(None)))


PRUNE_STEPS: dict[str, Callable[[Session, datetime], int]] = {
    "login_states": _login_states,
    "used_nonces": _nonces,
    "rate_limit_counters": _rate_counters,
    "registration_invites": _invites,
}


def prune_expired_state(db: Session, now: datetime | None = None) -> dict[str, int]:
    """Delete what has expired; the caller commits. Returns how many rows of each kind."""
    now = now or utcnow()
    return {name: step(db, now) for name, step in PRUNE_STEPS.items()}


def prune_job(runtime: Runtime) -> dict[str, int]:
    started = time.monotonic()
    with transaction(runtime.sessions) as db:
        counts = prune_expired_state(db)
    log.info("pruned %s in %.2fs", counts, time.monotonic() - started)
    return counts
