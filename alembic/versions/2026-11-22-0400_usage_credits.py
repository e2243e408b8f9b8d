"""usage credits: billing settings, ledger, payments, payment methods, stripe events

Revision ID: 20261122_credits
Revises: 70d5718f0a03
Create Date: 2026-11-22 03:50:32.491244
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261122_credits'
down_revision: str | Sequence[str] | None = '70d5718f0a03'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('stripe_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('processed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_event')),
    sa.UniqueConstraint('event_id', name=op.f('uq_stripe_event_event_id'))
    )
    op.create_table('billing_settings',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('billing_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('invoice_company_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('invoice_address1', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('invoice_address2', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('invoice_city', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('invoice_postal_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('invoice_region', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('invoice_country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('invoice_po_number', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('auto_recharge_enabled', sa.Boolean(), nullable=False),
    sa.Column('auto_recharge_threshold_cents', sa.BigInteger(), nullable=False),
    sa.Column('auto_recharge_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('spend_management_enabled', sa.Boolean(), nullable=False),
    sa.Column('daily_budget_cents', sa.BigInteger(), nullable=True),
    sa.Column('daily_notify_threshold_cents', sa.BigInteger(), nullable=True),
    sa.Column('webhook_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('invoice_priced', sa.Boolean(), nullable=False),
    sa.Column('stripe_customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_billing_settings_account_id_account')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_billing_settings'))
    )
    op.create_table('credit_balance',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), nullable=False),
    sa.Column('overage_credit_line_cents', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_credit_balance_account_id_account')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_credit_balance'))
    )
    op.create_table('ledger_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('balance_after_cents', sa.BigInteger(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_ledger_entry_account_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_entry_idempotency_key')),
    sa.UniqueConstraint('public_id', name=op.f('uq_ledger_entry_public_id'))
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entry_account_created', ['account_id', 'created_at'], unique=False)
        batch_op.create_index('ix_ledger_entry_account_id_id', ['account_id', 'id'], unique=False)
        batch_op.create_index('ix_ledger_entry_account_source_id', ['account_id', 'source', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('payment_method',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('stripe_payment_method_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('brand', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('last4', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('holder_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('bank_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_payment_method_account_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_method')),
    sa.UniqueConstraint('stripe_payment_method_id', name=op.f('uq_payment_method_stripe_payment_method_id'))
    )
    with op.batch_alter_table('payment_method', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_method_account_id'), ['account_id'], unique=False)

    op.create_table('payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('stripe_payment_intent_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('stripe_checkout_session_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('stripe_payment_method_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('failure_message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('ledger_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_payment_account_id_account')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user.id'], name=op.f('fk_payment_created_by_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_payment_idempotency_key')),
    sa.UniqueConstraint('public_id', name=op.f('uq_payment_public_id')),
    sa.UniqueConstraint('stripe_checkout_session_id', name=op.f('uq_payment_stripe_checkout_session_id')),
    sa.UniqueConstraint('stripe_payment_intent_id', name=op.f('uq_payment_stripe_payment_intent_id'))
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index('ix_payment_account_created', ['account_id', 'created_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_account_created')

    op.drop_table('payment')
    with op.batch_alter_table('payment_method', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_method_account_id'))

    op.drop_table('payment_method')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_invoice_id'))
        batch_op.drop_index('ix_ledger_entry_account_source_id')
        batch_op.drop_index('ix_ledger_entry_account_id_id')
        batch_op.drop_index('ix_ledger_entry_account_created')

    op.drop_table('ledger_entry')
    op.drop_table('credit_balance')
    op.drop_table('billing_settings')
    op.drop_table('stripe_event')

