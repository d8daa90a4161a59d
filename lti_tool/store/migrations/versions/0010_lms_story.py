"""sync runs record what could not be read; grade passback is an offering setting

Revision ID: 0010_lms_story
Revises: 0006_eu_elements
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_lms_story"
down_revision = "0006_eu_elements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))
    with op.batch_alter_table("offering") as batch:
        batch.add_column(sa.Column("grade_passback", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("offering") as batch:
        batch.drop_column("grade_passback")
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("warnings")
