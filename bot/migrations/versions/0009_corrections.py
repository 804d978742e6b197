"""corrections

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 14:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import bot.db

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('scenarios', sa.JSON(), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('risk', sa.Boolean(), nullable=False),
    sa.Column('intent', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('classifier', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('corrected_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('corrected_at', bot.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_corrections_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_corrections_corrected_at'), ['corrected_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_corrections_corrected_at'))
        batch_op.drop_index(batch_op.f('ix_corrections_message_id'))

    op.drop_table('corrections')
