"""intelligence gradings and reports sent to partner agencies

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import bot.db

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('intelligence_gradings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=1), nullable=False),
    sa.Column('intelligence', sa.String(length=1), nullable=False),
    sa.Column('handling', sa.String(length=1), nullable=False),
    sa.Column('conditions', sa.Text(), nullable=True),
    sa.Column('graded_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('graded_at', bot.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('intelligence_gradings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intelligence_gradings_case_id'), ['case_id'], unique=False)

    op.create_table('partner_sendings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('case_reference', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('agency', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('grading_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(), nullable=False),
    sa.Column('attempted_at', bot.db.UTCDateTime(), nullable=False),
    sa.Column('sent_at', bot.db.UTCDateTime(), nullable=True),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('body_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grading_id'], ['intelligence_gradings.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('partner_sendings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_sendings_agency'), ['agency'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_sendings_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_sendings_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('partner_sendings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_sendings_status'))
        batch_op.drop_index(batch_op.f('ix_partner_sendings_case_id'))
        batch_op.drop_index(batch_op.f('ix_partner_sendings_agency'))

    op.drop_table('partner_sendings')
    with op.batch_alter_table('intelligence_gradings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intelligence_gradings_case_id'))

    op.drop_table('intelligence_gradings')
