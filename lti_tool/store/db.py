"""Engine and session handling shared by the web app, the CLI and the scheduler."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import (
    CursorResult,
    DateTime,
    Delete,
    Engine,
    MetaData,
    Update,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# A model class (any mapped row type), for helpers that take the model and give its row.
RowT = TypeVar("RowT", bound="Base")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def referenced(db: Session, model: type[RowT], ident: int) -> RowT:
    """The row a NOT NULL foreign key points at: the database keeps it there (RESTRICT or
    CASCADE), so its absence is a broken database, never "not found" for a user."""
    row = db.get(model, ident)
    if row is None:
        raise LookupError(f"{model.__name__} {ident}, which a foreign key refers to, is missing")
    return row


def changed_rows(db: Session, statement: Delete | Update) -> int:
    """Run a DELETE or UPDATE and return how many rows it changed (0 when the driver does not
    say): what claim-once updates (`... WHERE used_at IS NULL`) and purges report."""
    result = db.execute(statement)
    if not isinstance(result, CursorResult):  # what a DML statement always gives
        raise TypeError(f"{type(statement).__name__} gave {type(result).__name__}")
    return max(result.rowcount or 0, 0)


def _create_owner_only(url: str) -> None:
    """A new SQLite database file is created 0600 (SQLite gives its -wal and -shm files the
    database file's mode), so other local users cannot read the tool's data."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str) -> Engine:
    """Engine with settings that make SQLite behave under concurrent processes."""
    if url.startswith("sqlite"):
        with contextlib.suppress(FileExistsError):  # made by a concurrent process
            _create_owner_only(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
