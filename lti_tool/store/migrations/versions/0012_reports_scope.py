"""reports scope: every quality-cycle row names its institution

Revision ID: 0012_reports_scope
Revises: 0010_lms_story
Create Date: 2026-12-02 00:53:40.771792

One installation hosts several institutions and an Office sees only its own, so each table of
the quality cycle gets `institution_id` (not null). Survey questions become the institution's
(no longer one set per registration); stakeholder links, their answers and improvement actions
keep the registration they were made through as a nullable `platform_id`.

Data: rows about a micro-credential (comments, stakeholder links and answers, follow-ups, and
actions linked to one) take the micro-credential's institution; the others their registration's.
Where several registrations of one institution had their own survey questions, the set of the
oldest registration is kept (the others' rows are dropped; answers keep their ratings). Plain
UPDATE ... SET (SELECT ...) and DELETE statements: SQLite and PostgreSQL alike.
"""

import sqlalchemy as sa
from alembic import op

revision = '0012_reports_scope'
down_revision = '0010_lms_story'
branch_labels = None
depends_on = None

# table -> how its institution is found: through "mc" (micro_credential_id) or "platform"
TABLES = {
    'survey_question': 'platform',
    'survey_response': 'platform',
    'survey_comment': 'mc',
    'contact_consent': 'platform',
    'follow_up': 'mc',
    'instructor_reflection': 'platform',
    'stakeholder_link': 'mc',
    'stakeholder_feedback': 'mc',
    'improvement_action': 'mc',
}
MADE_THROUGH = ('stakeholder_link', 'stakeholder_feedback', 'improvement_action')


def _fill() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    platform = sa.Table('platform', meta, autoload_with=bind)
    mc = sa.Table('micro_credential', meta, autoload_with=bind)
    question = sa.Table('survey_question', meta, autoload_with=bind)
    # One question set per institution: the oldest registration's.
    keep = (sa.select(sa.func.min(question.c.platform_id))
            .select_from(question.join(platform, platform.c.id == question.c.platform_id))
            .group_by(platform.c.institution_id))
    bind.execute(question.delete().where(question.c.platform_id.not_in(keep)))
    for name, via in TABLES.items():
        table = sa.Table(name, meta, autoload_with=bind)
        from_platform = (sa.select(platform.c.institution_id)
                         .where(platform.c.id == table.c.platform_id).scalar_subquery())
        value: sa.ColumnElement[int]
        if via == 'mc':
            from_mc = (sa.select(mc.c.institution_id)
                       .where(mc.c.id == table.c.micro_credential_id).scalar_subquery())
            value = sa.func.coalesce(from_mc, from_platform)
        else:
            value = from_platform
        bind.execute(table.update().values(institution_id=value))


def upgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.add_column(sa.Column('institution_id', sa.Integer(), nullable=True))

    _fill()

    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.alter_column('institution_id', existing_type=sa.Integer(), nullable=False)
            batch_op.create_index(batch_op.f(f'ix_{name}_institution_id'), ['institution_id'],
                                  unique=False)
            batch_op.create_foreign_key(batch_op.f(f'fk_{name}_institution_id_institution'),
                                        'institution', ['institution_id'], ['id'],
                                        ondelete='RESTRICT')
            if name in MADE_THROUGH:
                batch_op.alter_column('platform_id', existing_type=sa.INTEGER(), nullable=True)
                batch_op.drop_constraint(batch_op.f(f'fk_{name}_platform_id_platform'),
                                         type_='foreignkey')
                batch_op.create_foreign_key(batch_op.f(f'fk_{name}_platform_id_platform'),
                                            'platform', ['platform_id'], ['id'],
                                            ondelete='SET NULL')
            if name == 'survey_question':
                batch_op.drop_index(batch_op.f('ix_survey_question_platform_id'))
                batch_op.drop_constraint(batch_op.f('uq_survey_question_platform_id_code'),
                                         type_='unique')
                batch_op.create_unique_constraint(
                    batch_op.f('uq_survey_question_institution_id_code'),
                    ['institution_id', 'code'])
                batch_op.drop_constraint(batch_op.f('fk_survey_question_platform_id_platform'),
                                         type_='foreignkey')
                batch_op.drop_column('platform_id')


def _restore_question_platforms() -> None:
    """Back to one set per registration: the institution's set goes to its oldest one."""
    bind = op.get_bind()
    meta = sa.MetaData()
    platform = sa.Table('platform', meta, autoload_with=bind)
    question = sa.Table('survey_question', meta, autoload_with=bind)
    first = (sa.select(sa.func.min(platform.c.id))
             .where(platform.c.institution_id == question.c.institution_id).scalar_subquery())
    bind.execute(question.update().values(platform_id=first))
    bind.execute(question.delete().where(question.c.platform_id.is_(None)))
    for name in MADE_THROUGH:
        table = sa.Table(name, meta, autoload_with=bind)
        first = (sa.select(sa.func.min(platform.c.id))
                 .where(platform.c.institution_id == table.c.institution_id).scalar_subquery())
        bind.execute(table.update().where(table.c.platform_id.is_(None))
                     .values(platform_id=first))
        bind.execute(table.delete().where(table.c.platform_id.is_(None)))


def downgrade() -> None:
    with op.batch_alter_table('survey_question', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform_id', sa.INTEGER(), nullable=True))
    _restore_question_platforms()
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            if name == 'survey_question':
                batch_op.alter_column('platform_id', existing_type=sa.INTEGER(),
                                      nullable=False)
                batch_op.drop_constraint(batch_op.f('uq_survey_question_institution_id_code'),
                                         type_='unique')
                batch_op.create_unique_constraint(
                    batch_op.f('uq_survey_question_platform_id_code'), ['platform_id', 'code'])
                batch_op.create_index(batch_op.f('ix_survey_question_platform_id'),
                                      ['platform_id'], unique=False)
                batch_op.create_foreign_key(batch_op.f('fk_survey_question_platform_id_platform'),
                                            'platform', ['platform_id'], ['id'],
                                            ondelete='CASCADE')
            if name in MADE_THROUGH:
                batch_op.drop_constraint(batch_op.f(f'fk_{name}_platform_id_platform'),
                                         type_='foreignkey')
                batch_op.create_foreign_key(batch_op.f(f'fk_{name}_platform_id_platform'),
                                            'platform', ['platform_id'], ['id'],
                                            ondelete='CASCADE')
                batch_op.alter_column('platform_id', existing_type=sa.INTEGER(),
                                      nullable=False)
            batch_op.drop_constraint(batch_op.f(f'fk_{name}_institution_id_institution'),
                                     type_='foreignkey')
            batch_op.drop_index(batch_op.f(f'ix_{name}_institution_id'))
            batch_op.drop_column('institution_id')
