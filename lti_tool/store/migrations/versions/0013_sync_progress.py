"""sync progress in the database (any web node shows a sync's counts)

Expand-only: a new table; old nodes that do not know it keep serving while this runs.

Revision ID: 0013_sync_progress
Revises: 0012_reports_scope
"""

import sqlalchemy as sa
from alembic import op

from lti_tool.store.db import UTCDateTime

revision = "0013_sync_progress"
down_revision = "0012_reports_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_progress",
        sa.Column("context_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("phase", sa.String(length=100), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["context_id"], ["context.id"],
                                name=op.f("fk_sync_progress_context_id_context"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("context_id", name=op.f("pk_sync_progress")),
    )


def downgrade() -> None:
    op.drop_table("sync_progress")
