"""procrastinate's schema on PostgreSQL (its tables, types, functions and triggers).

Applied by migration 0009_jobs (and by the test fixtures that build tables with
`create_all`). procrastinate is pinned to one minor version in pyproject.toml: moving to a
newer one means a new Alembic revision that runs that version's files from
`procrastinate/sql/migrations/` (they are additive, so old workers keep running meanwhile).
"""

from __future__ import annotations

from typing import Any

PREFIX = "procrastinate_"


def apply(connection: Any) -> bool:
    """Create procrastinate's schema if it is missing; True when it was created."""
    if connection.dialect.name != "postgresql":
        return False
    present = connection.exec_driver_sql(
        "SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar()
    if present:
        return False
    from procrastinate.schema import SchemaManager

    # The raw driver connection: the schema is many statements with `%` in PL/pgSQL.
    connection.connection.driver_connection.execute(SchemaManager.get_schema())
    return True


def is_queue_object(name: str | None) -> bool:
    """procrastinate's tables are not SQLAlchemy models (for Alembic's comparisons)."""
    return bool(name and name.startswith(PREFIX))
