"""Alembic environment: the engine comes from the caller (see store.migrate).

On SQLite, batch migrations rebuild a table by copying it and dropping the old one; with
foreign keys enforced, dropping a parent table would run its ON DELETE CASCADE actions on the
children. Foreign keys are therefore switched off for the migration (the pragma only takes
effect outside a transaction) and checked afterwards.
"""

from alembic import context

import lti_tool.store.models  # noqa: F401  (registers every table)
from lti_tool.store import queue_schema
from lti_tool.store.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
        include_name=lambda name, kind, parent: not queue_schema.is_queue_object(name),
    )
    with connection.begin(), context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows without their parents: {broken[:5]}")
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
