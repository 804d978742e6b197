"""api tokens

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 17:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.db

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('secret_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', bot.db.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', bot.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_api_tokens_username'), 'api_tokens', ['username'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_api_tokens_username'), table_name='api_tokens')
    op.drop_table('api_tokens')
