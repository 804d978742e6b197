"""incident reports: conversation state, report entries, attachment fetch retry list

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 18:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import bot.db

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('incident_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('opening_message_id', sa.Integer(), nullable=True),
    sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('step', sa.String(length=16), nullable=False),
    sa.Column('anonymous', sa.Boolean(), nullable=True),
    sa.Column('skipped', sa.JSON(), nullable=False),
    sa.Column('reasked', sa.Boolean(), nullable=False),
    sa.Column('safeguarding', sa.Boolean(), nullable=False),
    sa.Column('safeguarding_signal', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('sexual_offence', sa.Boolean(), nullable=False),
    sa.Column('filed_reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('code_failures', sa.Integer(), nullable=False),
    sa.Column('code_failures_since', bot.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(), nullable=False),
    sa.Column('last_activity_at', bot.db.UTCDateTime(), nullable=False),
    sa.Column('filed_at', bot.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opening_message_id'], ['messages.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id'),
    sa.UniqueConstraint('opening_message_id'),
    sa.UniqueConstraint('public_id')
    )
    with op.batch_alter_table('incident_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_reports_last_activity_at'), ['last_activity_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_reports_status'), ['status'], unique=False)

    op.create_table('incident_report_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('added_at', bot.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['report_id'], ['incident_reports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('incident_report_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_report_entries_report_id'), ['report_id'], unique=False)

    op.create_table('attachment_fetches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attachment_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', bot.db.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(), nullable=False),
    sa.Column('done_at', bot.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['attachment_id'], ['message_attachments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('attachment_id')
    )
    with op.batch_alter_table('attachment_fetches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_fetches_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_fetches_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('attachment_fetches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_fetches_status'))
        batch_op.drop_index(batch_op.f('ix_attachment_fetches_message_id'))

    op.drop_table('attachment_fetches')
    with op.batch_alter_table('incident_report_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_report_entries_report_id'))

    op.drop_table('incident_report_entries')
    with op.batch_alter_table('incident_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_reports_status'))
        batch_op.drop_index(batch_op.f('ix_incident_reports_last_activity_at'))

    op.drop_table('incident_reports')
