"""Rate limits of the unauthenticated endpoints (`/lti/login`, `/lti/register`, `POST /verify`,
the stakeholder feedback form `/feedback/<token>` and the e-mailed follow-up link
`/follow-up/<token>`), per client address, loopback included (fixed windows, the `limits`
library).

The counters live in the tool's own database by default (`LTI_TOOL_RATE_LIMIT_STORAGE =
"database"`): every `serve` worker and node shares them without another service to run, on
SQLite and PostgreSQL alike (one upsert per request). The limits library ships no SQL storage,
so `DatabaseStorage` below implements its storage interface; any storage URI the limits library
supports (`redis://…`, `memcached://…`) can be named instead. The `X-RateLimit-*` headers of a
counted request are answered from the upsert's own RETURNING (no second and third query).

Only the listed views are limited, so the limit is a wrapper around each of them and nothing
runs for any other request (Flask-Limiter, used before, evaluated its limit tables before and
after every request: a tenth of a login's CPU). Counter keys are the ones Flask-Limiter wrote
(`LIMITER/lti-tool/<address>/<endpoint>/<amount>/<multiples>/<period>`), so a rolling upgrade keeps
counting in the same rows.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, g, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Engine, Float, Integer, bindparam, case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from lti_tool.settings import Settings
from lti_tool.store.models.core import RateLimitCounter

SCHEME = "lti-tool-db"
KEY_LENGTH = 255
# How long the count a request's own upsert returned answers `get`/`get_expiry` for that key in
# the same thread (Flask-Limiter reads the window back right after counting, for its headers).
RECENT_SECONDS = 1.0
# (endpoint, setting, methods): the views, the settings that give their limits, and the
# methods they count (None: every method).
LIMITED: tuple[tuple[str, str, list[str] | None], ...] = (
    ("lti.login", "rate_limit_login", None),
    ("registration.register", "rate_limit_register", None),
    ("public.verify", "rate_limit_verify", None),
    ("reports.stakeholder_feedback", "rate_limit_feedback_page", ["GET"]),
    ("reports.stakeholder_feedback", "rate_limit_feedback", ["POST"]),
    ("reports.follow_up_link", "rate_limit_follow_up", None),
)


class DatabaseStorage(Storage):
    """Fixed-window counters in the `rate_limit_counter` table."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: object) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        engine = options.get("engine")
        if not isinstance(engine, Engine):
            raise ValueError("DatabaseStorage needs the tool's engine (storage option 'engine')")
        self.engine = engine
        self._recent = threading.local()  # (key, count, expires_at, when) of the last upsert

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def _insert(self):
        return (pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(
            RateLimitCounter)

    @functools.cached_property
    def _upsert(self):
        """The counting upsert, built once (it runs on every limited request)."""
        table = RateLimitCounter.__table__
        amount, now = bindparam("amount", type_=Integer), bindparam("now", type_=Float)
        ends = bindparam("ends", type_=Float)
        expired = table.c.expires_at <= now
        return self._insert().values(key=bindparam("key"), count=amount, expires_at=ends) \
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"count": case((expired, amount), else_=table.c.count + amount),
                      "expires_at": case((expired, ends), else_=table.c.expires_at)},
            ).returning(table.c.count, table.c.expires_at)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            count, expires_at = conn.execute(self._upsert, {
                "key": key[:KEY_LENGTH], "amount": amount, "now": now,
                "ends": now + expiry}).one()
        self._recent.row = (key, int(count), float(expires_at), time.monotonic())
        return int(count)

    def _row(self, key: str) -> tuple[int, float] | None:
        recent = getattr(self._recent, "row", None)
        if (recent is not None and recent[0] == key
                and time.monotonic() - recent[3] < RECENT_SECONDS):
            return (recent[1], recent[2]) if recent[2] > time.time() else None
        with self.engine.connect() as conn:
            row = conn.execute(select(RateLimitCounter.count, RateLimitCounter.expires_at)
                               .where(RateLimitCounter.key == key[:KEY_LENGTH])).first()
        if row is None or row[1] <= time.time():
            return None
        return int(row[0]), float(row[1])

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        self._recent.row = None
        with self.engine.begin() as conn:
            return conn.execute(delete(RateLimitCounter)).rowcount

    def clear(self, key: str) -> None:
        self._recent.row = None
        with self.engine.begin() as conn:
            conn.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key[:KEY_LENGTH]))


def client_address() -> str:
    """The connecting address, loopback included: a proxy in front must be configured to pass
    the real one (the tool trusts no X-Forwarded-For by itself)."""
    return request.remote_addr or "unknown"


KEY_PREFIX = "lti-tool"


@dataclass(frozen=True)
class _Counted:
    """The limit a request was counted against, for its `X-RateLimit-*` headers."""

    item: RateLimitItem
    identifiers: tuple[str, ...]


class RateLimits:
    """Fixed-window limits per client address on a few views (the `limits` library's strategy
    over one storage)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.strategy = FixedWindowRateLimiter(storage)

    def count(self, items: list[RateLimitItem], scope: str) -> None:
        """Count this request against each item, tightest first, up to the first one exceeded
        (a 429 naming it; the looser ones are not counted then)."""
        identifiers = (KEY_PREFIX, client_address(), scope)
        counted: _Counted | None = None
        for item in sorted(items):
            if not self.strategy.hit(item, *identifiers):
                g.rate_limit = _Counted(item, identifiers)
                raise TooManyRequests(description=str(item))
            counted = counted or _Counted(item, identifiers)
        g.rate_limit = counted

    def headers(self, response: Response) -> Response:
        """`X-RateLimit-Limit`, `-Remaining`, `-Reset` and `Retry-After` of a counted request
        (its own answer, an error page or the 429)."""
        counted: _Counted | None = g.pop("rate_limit", None)
        if counted is None:
            return response
        expiry, remaining = self.strategy.get_window_stats(counted.item, *counted.identifiers)
        reset = int(expiry + 1)  # whole seconds, not before the window ends
        response.headers.add("X-RateLimit-Limit", str(counted.item.amount))
        response.headers.add("X-RateLimit-Remaining", str(remaining))
        response.headers.add("X-RateLimit-Reset", str(reset))
        response.headers.set("Retry-After", str(int(reset - time.time())))
        return response

    def limit(self, view: Callable[..., Any], scope: str, limit: str,
              methods: list[str] | None) -> Callable[..., Any]:
        """`view` counted against `limit` in the counters of `scope` (its endpoint), for
        `methods` only when given."""
        items = parse_many(limit)
        counted_methods = None if methods is None else {m.upper() for m in methods}

        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            if counted_methods is None or request.method in counted_methods:
                self.count(items, scope)
            return view(*args, **kwargs)

        return limited


def install(app: Flask, settings: Settings, engine: Engine) -> RateLimits:
    """Limit the unauthenticated endpoints (after the blueprints are registered)."""
    if settings.rate_limit_storage == "database":
        storage: Storage = DatabaseStorage(f"{SCHEME}://", engine=engine)
    else:
        named = storage_from_string(settings.rate_limit_storage)
        if not isinstance(named, Storage):  # an async:// URI: the views are synchronous
            raise ValueError(f"rate_limit_storage {settings.rate_limit_storage!r} is an "
                             "asynchronous storage; name a synchronous one")
        storage = named
    limits = RateLimits(storage)
    for endpoint, setting, methods in LIMITED:
        view = app.view_functions[endpoint]  # a renamed endpoint must not go unlimited
        app.view_functions[endpoint] = limits.limit(view, endpoint,
                                                   getattr(settings, setting), methods)
    app.after_request(limits.headers)
    return limits
