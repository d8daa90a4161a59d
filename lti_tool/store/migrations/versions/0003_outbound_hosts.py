"""outbound hosts: a registration's LMS hosts, its normalised token endpoint (unique with the
client_id) and the rate-limit counters

Revision ID: 0003_outbound_hosts
Revises: 0008_evidence
"""

import sqlalchemy as sa
from alembic import op

from lti_tool.outbound import token_endpoint_key

revision = "0003_outbound_hosts"
down_revision = "0008_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("platform") as batch:
        batch.add_column(sa.Column("lms_hosts", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("token_endpoint_key", sa.String(length=1000), nullable=True))
    platform = sa.table("platform", sa.column("id", sa.Integer()),
                        sa.column("client_id", sa.String()),
                        sa.column("auth_token_url", sa.String()),
                        sa.column("lms_hosts", sa.JSON()),
                        sa.column("token_endpoint_key", sa.String()))
    conn = op.get_bind()
    seen: set[tuple[str, str]] = set()
    rows = conn.execute(sa.select(platform.c.id, platform.c.client_id, platform.c.auth_token_url)
                        .order_by(platform.c.id)).all()
    for row in rows:
        key = token_endpoint_key(row.auth_token_url)
        # An older duplicate pair keeps no key (NULLs never collide); the operator sees it.
        if key is not None and (key, row.client_id) in seen:
            key = None
        if key is not None:
            seen.add((key, row.client_id))
        conn.execute(platform.update().where(platform.c.id == row.id)
                     .values(lms_hosts=[], token_endpoint_key=key))
    with op.batch_alter_table("platform") as batch:
        batch.alter_column("lms_hosts", existing_type=sa.JSON(), nullable=False)
        batch.create_unique_constraint("uq_platform_token_endpoint_client",
                                       ["token_endpoint_key", "client_id"])
    op.create_table(
        "rate_limit_counter",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_counter")
    with op.batch_alter_table("platform") as batch:
        batch.drop_constraint("uq_platform_token_endpoint_client", type_="unique")
        batch.drop_column("token_endpoint_key")
        batch.drop_column("lms_hosts")
