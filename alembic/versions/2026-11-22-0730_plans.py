"""plans: purchased seats, the plan's status and billing period, and plan changes

Revision ID: 20261122_plans
Revises: 20261122_invoices
Create Date: 2026-11-22 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261122_plans'
down_revision: str | Sequence[str] | None = '20261122_invoices'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seats_purchased', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('plan_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='active'))
        batch_op.add_column(sa.Column('plan_period_start', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('plan_renews_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    op.create_table('plan_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('from_plan_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('to_plan_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('from_seats', sa.Integer(), nullable=False),
    sa.Column('to_seats', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('effective_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('failure_message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('applied_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_plan_change_account_id_account')),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_plan_change_payment_id_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_change')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_plan_change_idempotency_key')),
    sa.UniqueConstraint('public_id', name=op.f('uq_plan_change_public_id'))
    )
    with op.batch_alter_table('plan_change', schema=None) as batch_op:
        batch_op.create_index('ix_plan_change_account_status', ['account_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('plan_change', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_change_account_status')

    op.drop_table('plan_change')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('plan_renews_at')
        batch_op.drop_column('plan_period_start')
        batch_op.drop_column('plan_status')
        batch_op.drop_column('seats_purchased')
