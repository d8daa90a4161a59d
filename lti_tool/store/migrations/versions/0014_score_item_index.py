"""drop score's index on grade_item_id alone (the unique key on (grade_item_id, person_id) leads with it)

Every insert of a mark maintained four indexes; a first sync writes a course's marks by the
hundred thousand. Lookups by item use the unique key's leading column, on SQLite and
PostgreSQL alike. Safe while old nodes run: none relies on the index by name.

Revision ID: 0014_score_item_index
Revises: 0013_sync_progress
"""

from alembic import op

revision = "0014_score_item_index"
down_revision = "0013_sync_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("score", schema=None) as batch_op:
        batch_op.drop_index("ix_score_grade_item_id")


def downgrade() -> None:
    with op.batch_alter_table("score", schema=None) as batch_op:
        batch_op.create_index("ix_score_grade_item_id", ["grade_item_id"], unique=False)
