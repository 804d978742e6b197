"""channel credentials, oauth pending, totp secrets, sign-in challenges

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 18:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.db

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channel_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('account_name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('sealed_access_token', sa.Text(), nullable=False),
    sa.Column('sealed_refresh_token', sa.Text(), nullable=True),
    sa.Column('expires_at', bot.db.UTCDateTime(), nullable=True),
    sa.Column('scopes', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('needs_reauth', sa.Boolean(), nullable=False),
    sa.Column('problem', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('connected_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('connected_at', bot.db.UTCDateTime(), nullable=False),
    sa.Column('refreshed_at', bot.db.UTCDateTime(), nullable=True),
    sa.Column('refresh_claimed_at', bot.db.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel')
    )
    op.create_table('oauth_pending',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('session_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sealed_verifier', sa.Text(), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('state_sha256')
    )
    op.create_index(op.f('ix_oauth_pending_created_at'), 'oauth_pending', ['created_at'], unique=False)
    op.create_table('totp_secrets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('sealed_secret', sa.Text(), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(), nullable=False),
    sa.Column('confirmed_at', bot.db.UTCDateTime(), nullable=True),
    sa.Column('last_used_step', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id')
    )
    op.create_table('sign_in_challenges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_sha256')
    )
    op.create_index(op.f('ix_sign_in_challenges_created_at'), 'sign_in_challenges', ['created_at'], unique=False)
    op.create_index(op.f('ix_sign_in_challenges_user_id'), 'sign_in_challenges', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sign_in_challenges_user_id'), table_name='sign_in_challenges')
    op.drop_index(op.f('ix_sign_in_challenges_created_at'), table_name='sign_in_challenges')
    op.drop_table('sign_in_challenges')
    op.drop_table('totp_secrets')
    op.drop_index(op.f('ix_oauth_pending_created_at'), table_name='oauth_pending')
    op.drop_table('oauth_pending')
    op.drop_table('channel_credentials')
