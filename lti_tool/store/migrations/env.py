"""Alembic environment: the engine comes from the caller (see store.migrate)."""

from alembic import context

import lti_tool.store.models  # noqa: F401  (registers every table)
from lti_tool.store import queue_schema
from lti_tool.store.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=lambda name, kind, parent: not queue_schema.is_queue_object(name),
    )
    with context.begin_transaction():
        context.run_migrations()
