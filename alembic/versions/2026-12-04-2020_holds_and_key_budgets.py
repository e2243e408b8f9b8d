"""holds and key budgets: credit holds, the credits they hold on the metering row, and each API
key's daily budget with its day's usage and holds

Revision ID: 20261204_holds_key_budgets
Revises: 20261204_credit_grants
Create Date: 2026-12-04 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_holds_key_budgets'
down_revision: str | Sequence[str] | None = '20261204_credit_grants'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('credit_balance', sa.Column('held_cents', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('api_key', sa.Column('daily_budget_cents', sa.BigInteger(), nullable=True))
    op.add_column('api_key', sa.Column('usage_day', sa.Date(), nullable=True))
    op.add_column('api_key', sa.Column('used_today_cents', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('api_key', sa.Column('held_cents', sa.BigInteger(), server_default='0', nullable=False))
    op.create_table(
        'credit_hold',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=True),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('key_held_cents', sa.BigInteger(), nullable=False),
        sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('captured_cents', sa.BigInteger(), nullable=False),
        sa.Column('ledger_entry_id', sa.BigInteger(), nullable=True),
        sa.Column('closing_json', sa.Text(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name='fk_credit_hold_account_id_account'),
        sa.PrimaryKeyConstraint('id', name='pk_credit_hold'),
        sa.UniqueConstraint('account_id', 'public_id', name='uq_credit_hold_account_public_id'),
    )
    op.create_index('ix_credit_hold_account_status', 'credit_hold', ['account_id', 'status'])
    op.create_index('ix_credit_hold_status_expires', 'credit_hold', ['status', 'expires_at'])


def downgrade() -> None:
    op.drop_index('ix_credit_hold_status_expires', table_name='credit_hold')
    op.drop_index('ix_credit_hold_account_status', table_name='credit_hold')
    op.drop_table('credit_hold')
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_column('held_cents')
        batch_op.drop_column('used_today_cents')
        batch_op.drop_column('usage_day')
        batch_op.drop_column('daily_budget_cents')
    with op.batch_alter_table('credit_balance', schema=None) as batch_op:
        batch_op.drop_column('held_cents')
