"""usage rollup: usage debits per day, API key and description, and each account's watermark

Revision ID: 20261204_usage_rollup
Revises: 20261204_chat
Create Date: 2026-12-04 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_usage_rollup'
down_revision: str | Sequence[str] | None = '20261204_chat'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'usage_rollup',
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('api_key_id', sa.BigInteger(), nullable=False),
        sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('cents', sa.BigInteger(), nullable=False),
        sa.Column('calls', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_usage_rollup_account_id_account')),
        sa.PrimaryKeyConstraint('account_id', 'day', 'api_key_id', 'description', name=op.f('pk_usage_rollup')),
    )
    op.create_table(
        'usage_rollup_state',
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('last_entry_id', sa.BigInteger(), nullable=False),
        sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_usage_rollup_state_account_id_account')),
        sa.PrimaryKeyConstraint('account_id', name=op.f('pk_usage_rollup_state')),
    )


def downgrade() -> None:
    op.drop_table('usage_rollup_state')
    op.drop_table('usage_rollup')
