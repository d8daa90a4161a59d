"""sessions: browser binding, sliding and absolute expiry, revocation, one-time session codes

Revision ID: 0004_sessions
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import lti_tool.store.db

revision = "0004_sessions"
down_revision = "0003_outbound_hosts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "used_session_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", lti_tool.store.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_used_session_code")),
        sa.UniqueConstraint("code_id", name=op.f("uq_used_session_code_code_id")),
    )
    op.create_index(op.f("ix_used_session_code_expires_at"), "used_session_code",
                    ["expires_at"], unique=False)
    with op.batch_alter_table("web_session") as batch:
        batch.add_column(sa.Column("binding", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("absolute_expires_at",
                                   lti_tool.store.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", lti_tool.store.db.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_session") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("absolute_expires_at")
        batch.drop_column("binding")
    op.drop_index(op.f("ix_used_session_code_expires_at"), table_name="used_session_code")
    op.drop_table("used_session_code")
