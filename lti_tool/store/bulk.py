"""Bulk reads and writes below the ORM: rows as the database driver gives and takes them.

The sync and the evaluation move tens of thousands of rows per batch; building a `Row`, an ORM
object or a SQLAlchemy parameter set for each costs more than the database's own work. These
helpers read a statement's rows as the driver returns them, convert a value to a column's
written form once (the conversion an INSERT through SQLAlchemy would apply), and insert rows
with COPY on PostgreSQL (psycopg) or one executemany elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect, Table
from sqlalchemy.exc import IntegrityError

from lti_tool.store.models.catalogue import DecimalText


def _same(value: Any) -> Any:
    return value


def driver_rows(result: CursorResult[Any]) -> list[tuple[Any, ...]]:
    """All rows of an executed statement as the driver returns them (plain tuples, no `Row`
    objects and no result conversion: for columns read raw, e.g. through `type_coerce` to
    `NullType`)."""
    cursor = result.cursor
    rows: list[tuple[Any, ...]] = list(cursor.fetchall()) if cursor is not None else []
    result.close()
    return rows


def conversions(table: Table, name: str, dialect: Dialect,
                ) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """A column's bind conversion (a value to what the driver is given) and result conversion
    (what the driver returns to the value), for one dialect."""
    declared = table.c[name].type
    column_type = declared.dialect_impl(dialect)
    bind = column_type.bind_processor(dialect) or _same
    if (isinstance(declared, DecimalText)
            and declared.impl_instance.bind_processor(dialect) is None):
        bind = DecimalText.written  # the same text, without SQLAlchemy's wrappers
    return bind, column_type.result_processor(dialect, None) or _same


def placeholders(dialect: Dialect, sql: str) -> str:
    """`sql` written with qmark placeholders, in the dialect's own (the PostgreSQL drivers
    take %s)."""
    return sql if dialect.paramstyle == "qmark" else sql.replace("?", "%s")


class BulkInsert:
    """Insert rows into some columns of a table, values already in their written form (the
    columns' bind conversions applied): COPY on PostgreSQL (psycopg), an executemany
    elsewhere."""

    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str]) -> None:
        # Only the table's own name and column names go into the statements.
        names = ", ".join(table.c[name].name for name in columns)
        marks = ", ".join("?" for _ in columns)
        self.insert_sql = placeholders(
            dialect, f"INSERT INTO {table.name} ({names}) VALUES ({marks})")  # noqa: S608
        self.copy_sql = (f"COPY {table.name} ({names}) FROM STDIN"
                         if dialect.name == "postgresql" and dialect.driver == "psycopg"
                         else None)

    def __call__(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        driver = connection.connection.driver_connection
        if self.copy_sql is None or driver is None or not hasattr(driver, "cursor"):
            connection.exec_driver_sql(self.insert_sql, list(rows))
            return
        try:
            with driver.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except connection.dialect.loaded_dbapi.IntegrityError as exc:
            # as an executemany through SQLAlchemy raises it (callers catch one kind)
            raise IntegrityError(self.copy_sql, None, exc) from exc
