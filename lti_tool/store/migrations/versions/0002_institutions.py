"""institutions: the awarding bodies, registration status, per-institution catalogue and keys

Revision ID: 0002_institutions
Revises: 0007_reports
Create Date: 2026-12-01 21:54:28.836117

Data: every existing registration becomes its own institution, named from today's issuer
settings (`issuer_name`, `issuer_country`, `issuer_url`, `issuer_email`, `issuer_slug`) and
active (it launched before). The first registration's institution keeps `issuer_slug`, so the
issuer id every existing credential names (`/issuers/<issuer_slug>`) and the badge keys that
signed them stay together; the others get `<issuer_slug>-<platform id>`. Micro-credentials and
their versions go to their registration's institution; the existing badge keys and status lists
to the first institution. Invites are bound to the institution when there is exactly one, and
dropped otherwise (they are one-time URLs; the operator makes new ones with `--institution`).
Works on SQLite and PostgreSQL (plain UPDATEs, no dialect-specific SQL).
"""

import sqlalchemy as sa
from alembic import op

import lti_tool.store.db

revision = '0002_institutions'
down_revision = '0007_reports'
branch_labels = None
depends_on = None

BADGE_PURPOSES = ("badge-rsa", "badge-ed25519")


def _issuer_settings() -> dict:
    from lti_tool.settings import load_settings

    settings = load_settings()
    return {"slug": settings.issuer_slug, "name": settings.issuer_name,
            "country": (settings.issuer_country or "TR").upper()[:2],
            "url": settings.issuer_url, "email": settings.issuer_email}


def _migrate_data() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    institution = sa.Table("institution", meta, autoload_with=bind)
    platform = sa.Table("platform", meta, autoload_with=bind)
    tables = {name: sa.Table(name, meta, autoload_with=bind) for name in (
        "micro_credential", "micro_credential_version", "tool_key", "badge_status_list",
        "audit_entry", "registration_invite")}
    now = lti_tool.store.db.utcnow()
    platforms = bind.execute(sa.select(platform.c.id, platform.c.name, platform.c.issuer)
                             .order_by(platform.c.id)).all()
    needs_first = bool(platforms) or any(
        bind.execute(sa.select(sa.func.count()).select_from(tables[name])).scalar()
        for name in ("micro_credential", "tool_key", "badge_status_list"))
    if not needs_first:
        bind.execute(tables["registration_invite"].delete())
        return
    facts = _issuer_settings()
    made: list[int] = []
    rows: list[sa.Row | None] = list(platforms) or [None]  # no platform: one institution
    for index, row in enumerate(rows):
        values = dict(facts, created_at=now, region=None, legal_identifier=None)
        if index and row is not None:  # the first institution keeps the issuer settings
            values["slug"] = f"{facts['slug']}-{row.id}"[:63]
            values["name"] = f"{facts['name']} ({row.name or row.issuer})"[:255]
        institution_id = bind.execute(institution.insert().values(**values)
                                      .returning(institution.c.id)).scalar_one()
        made.append(institution_id)
        if row is not None:
            bind.execute(platform.update().where(platform.c.id == row.id)
                         .values(institution_id=institution_id, status="active"))
    first = made[0]
    for name in ("micro_credential", "micro_credential_version"):
        table = tables[name]
        owner = (sa.select(platform.c.institution_id)
                 .where(platform.c.id == table.c.platform_id).scalar_subquery())
        bind.execute(table.update().values(institution_id=sa.func.coalesce(owner, first)))
    audit = tables["audit_entry"]
    bind.execute(audit.update().where(audit.c.platform_id.is_not(None)).values(
        institution_id=sa.select(platform.c.institution_id)
        .where(platform.c.id == audit.c.platform_id).scalar_subquery()))
    key = tables["tool_key"]
    bind.execute(key.update().where(key.c.purpose.in_(BADGE_PURPOSES))
                 .values(institution_id=first))
    bind.execute(tables["badge_status_list"].update().values(institution_id=first))
    invite = tables["registration_invite"]
    if len(made) == 1:
        bind.execute(invite.update().values(institution_id=first, allow_shared_issuer=False))
    else:
        bind.execute(invite.delete())


def upgrade() -> None:
    op.create_table('institution',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('region', sa.String(length=255), nullable=True),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('legal_identifier', sa.String(length=255), nullable=True),
    sa.Column('created_at', lti_tool.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_institution')),
    sa.UniqueConstraint('slug', name=op.f('uq_institution_slug'))
    )
    # 1. the new columns, nullable while the data is filled in
    for table in ('platform', 'micro_credential', 'micro_credential_version', 'tool_key',
                  'badge_status_list', 'audit_entry', 'registration_invite'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('institution_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('platform', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=True))
    with op.batch_alter_table('registration_invite', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_shared_issuer', sa.Boolean(), nullable=True))

    # 2. the data
    _migrate_data()

    # 3. constraints
    for table in ('approval_event', 'learning_outcome', 'pathway_component'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('platform_id', existing_type=sa.INTEGER(), nullable=True)
            batch_op.drop_constraint(batch_op.f(f'fk_{table}_platform_id_platform'),
                                     type_='foreignkey')
            batch_op.create_foreign_key(batch_op.f(f'fk_{table}_platform_id_platform'),
                                        'platform', ['platform_id'], ['id'], ondelete='SET NULL')

    for table in ('audit_entry', 'badge_status_list', 'tool_key'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f'ix_{table}_institution_id'), ['institution_id'],
                                  unique=False)
            batch_op.create_foreign_key(batch_op.f(f'fk_{table}_institution_id_institution'),
                                        'institution', ['institution_id'], ['id'],
                                        ondelete='RESTRICT')

    with op.batch_alter_table('micro_credential', schema=None) as batch_op:
        batch_op.alter_column('institution_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('platform_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.drop_constraint(batch_op.f('uq_micro_credential_platform_id_code'), type_='unique')
        batch_op.create_index(batch_op.f('ix_micro_credential_institution_id'), ['institution_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_micro_credential_institution_id_code'), ['institution_id', 'code'])
        batch_op.drop_constraint(batch_op.f('fk_micro_credential_platform_id_platform'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_micro_credential_platform_id_platform'), 'platform', ['platform_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_micro_credential_institution_id_institution'), 'institution', ['institution_id'], ['id'], ondelete='RESTRICT')

    with op.batch_alter_table('micro_credential_version', schema=None) as batch_op:
        batch_op.alter_column('institution_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('platform_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_micro_credential_version_institution_id'), ['institution_id'], unique=False)
        batch_op.drop_constraint(batch_op.f('fk_micro_credential_version_platform_id_platform'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_micro_credential_version_platform_id_platform'), 'platform', ['platform_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_micro_credential_version_institution_id_institution'), 'institution', ['institution_id'], ['id'], ondelete='RESTRICT')

    with op.batch_alter_table('platform', schema=None) as batch_op:
        batch_op.alter_column('institution_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('status', existing_type=sa.String(length=20), nullable=False)
        batch_op.create_index(batch_op.f('ix_platform_institution_id'), ['institution_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_platform_status'), ['status'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_platform_institution_id_institution'), 'institution', ['institution_id'], ['id'], ondelete='RESTRICT')

    with op.batch_alter_table('registration_invite', schema=None) as batch_op:
        batch_op.alter_column('institution_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('allow_shared_issuer', existing_type=sa.Boolean(), nullable=False)
        batch_op.create_index(batch_op.f('ix_registration_invite_institution_id'), ['institution_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_registration_invite_institution_id_institution'), 'institution', ['institution_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    # Drops the institutions; micro-credentials keep their creating registration.
    with op.batch_alter_table('tool_key', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tool_key_institution_id_institution'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tool_key_institution_id'))
        batch_op.drop_column('institution_id')

    with op.batch_alter_table('registration_invite', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_registration_invite_institution_id_institution'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_registration_invite_institution_id'))
        batch_op.drop_column('allow_shared_issuer')
        batch_op.drop_column('institution_id')

    with op.batch_alter_table('platform', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_platform_institution_id_institution'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_platform_status'))
        batch_op.drop_index(batch_op.f('ix_platform_institution_id'))
        batch_op.drop_column('status')
        batch_op.drop_column('institution_id')

    with op.batch_alter_table('pathway_component', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_pathway_component_platform_id_platform'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_pathway_component_platform_id_platform'), 'platform', ['platform_id'], ['id'], ondelete='CASCADE')
        batch_op.alter_column('platform_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    with op.batch_alter_table('micro_credential_version', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_micro_credential_version_institution_id_institution'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_micro_credential_version_platform_id_platform'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_micro_credential_version_platform_id_platform'), 'platform', ['platform_id'], ['id'], ondelete='CASCADE')
        batch_op.drop_index(batch_op.f('ix_micro_credential_version_institution_id'))
        batch_op.alter_column('platform_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('institution_id')

    with op.batch_alter_table('micro_credential', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_micro_credential_institution_id_institution'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_micro_credential_platform_id_platform'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_micro_credential_platform_id_platform'), 'platform', ['platform_id'], ['id'], ondelete='CASCADE')
        batch_op.drop_constraint(batch_op.f('uq_micro_credential_institution_id_code'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_micro_credential_institution_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_micro_credential_platform_id_code'), ['platform_id', 'code'])
        batch_op.alter_column('platform_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('institution_id')

    with op.batch_alter_table('learning_outcome', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_learning_outcome_platform_id_platform'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_learning_outcome_platform_id_platform'), 'platform', ['platform_id'], ['id'], ondelete='CASCADE')
        batch_op.alter_column('platform_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    with op.batch_alter_table('badge_status_list', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_badge_status_list_institution_id_institution'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_badge_status_list_institution_id'))
        batch_op.drop_column('institution_id')

    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_audit_entry_institution_id_institution'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_audit_entry_institution_id'))
        batch_op.drop_column('institution_id')

    with op.batch_alter_table('approval_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_approval_event_platform_id_platform'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_approval_event_platform_id_platform'), 'platform', ['platform_id'], ['id'], ondelete='CASCADE')
        batch_op.alter_column('platform_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    op.drop_table('institution')
