"""meeting bookings on the web: manage link, email, reminders

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 18:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.db

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manage_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True))
        batch_op.add_column(sa.Column('reminded_at', bot.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('reminder_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reminder_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))
        batch_op.add_column(sa.Column('reminder_refused', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f('ix_bookings_manage_id'), ['manage_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bookings_manage_id'))
        batch_op.drop_column('reminder_refused')
        batch_op.drop_column('reminder_error')
        batch_op.drop_column('reminder_attempts')
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('email')
        batch_op.drop_column('manage_id')
