"""EU micro-credential elements: the Annex I fields of the Design Plan

Revision ID: 0006_eu_elements
Revises: 0004_sessions

Adds the Annex I elements of Council Recommendation 2022/C 243/02 the Design Plan lacked.
Existing versions get empty values (server defaults, so this works on SQLite and PostgreSQL
alike); a version that lacks a mandatory element is listed as incomplete until the Office
completes it (`lti_tool.domain.catalogue.annex_gaps`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_eu_elements"
down_revision = "0002_institutions"
branch_labels = None
depends_on = None

TEXT_COLUMNS = (
    ("prerequisites", sa.Text()),
    ("supervision", sa.String(length=30)),
    ("qf_ehea_cycle", sa.String(length=10)),
    ("learning_setting", sa.String(length=20)),
    ("region", sa.String(length=100)),
    ("further_information", sa.Text()),
    ("overall_result", sa.String(length=20)),
)


def upgrade() -> None:
    with op.batch_alter_table("micro_credential_version") as batch:
        for name, kind in TEXT_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=False, server_default=""))
        batch.add_column(sa.Column("co_awarding_bodies", sa.JSON(), nullable=False,
                                   server_default="[]"))
    # The models set these values themselves; drop the server defaults so the schema matches.
    with op.batch_alter_table("micro_credential_version") as batch:
        for name, kind in TEXT_COLUMNS:
            batch.alter_column(name, existing_type=kind, server_default=None)
        batch.alter_column("co_awarding_bodies", existing_type=sa.JSON(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("micro_credential_version") as batch:
        for name, _kind in TEXT_COLUMNS:
            batch.drop_column(name)
        batch.drop_column("co_awarding_bodies")
