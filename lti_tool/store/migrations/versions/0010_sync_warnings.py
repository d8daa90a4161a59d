"""sync runs record the sources (or parts) that could not be read

Revision ID: 0010_sync_warnings
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_sync_warnings"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("warnings")
