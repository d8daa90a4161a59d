"""Durable jobs: the outbox table `job`, and procrastinate's schema on PostgreSQL.

Expand-only: a new table (and procrastinate's objects); old nodes that do not know them keep
serving while this runs.

Revision ID: 0009_jobs
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from lti_tool.store import queue_schema
from lti_tool.store.db import UTCDateTime

revision = "0009_jobs"
down_revision = "0004_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platform.id"],
                                name=op.f("fk_job_platform_id_platform"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("key", name=op.f("uq_job_key")),
    )
    op.create_index("ix_job_due", "job", ["status", "run_after"], unique=False)
    op.create_index("ix_job_platform_status", "job", ["platform_id", "status"], unique=False)
    queue_schema.apply(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_job_platform_status", table_name="job")
    op.drop_index("ix_job_due", table_name="job")
    op.drop_table("job")
