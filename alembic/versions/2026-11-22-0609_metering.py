"""metering: api keys, spend limits on the balance row, auto recharge state, webhook deliveries

Revision ID: 20261122_metering
Revises: 20261122_credits
Create Date: 2026-11-22 06:09:54.414657
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261122_metering'
down_revision: str | Sequence[str] | None = '20261122_credits'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('metering_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response_json', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_metering_request_account_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metering_request')),
    sa.UniqueConstraint('account_id', 'idempotency_key', name=op.f('uq_metering_request_account_id'))
    )
    op.create_table('webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_webhook_delivery_account_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery')),
    sa.UniqueConstraint('public_id', name=op.f('uq_webhook_delivery_public_id'))
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_account_created', ['account_id', 'created_at'], unique=False)

    op.create_table('webhook_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('attempted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_delivery.id'], name=op.f('fk_webhook_attempt_delivery_id_webhook_delivery')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempt'))
    )
    with op.batch_alter_table('webhook_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_attempt_delivery_id'), ['delivery_id'], unique=False)

    op.create_table('api_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('secret_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('deleted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_api_key_account_id_account')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user.id'], name=op.f('fk_api_key_created_by_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key')),
    sa.UniqueConstraint('public_id', name=op.f('uq_api_key_public_id')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_api_key_secret_hash'))
    )
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_key_account_id'), ['account_id'], unique=False)

    with op.batch_alter_table('billing_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_recharge_failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('auto_recharge_disabled_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('webhook_secret', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default=''))

    with op.batch_alter_table('credit_balance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('usage_day', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('used_today_cents', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('daily_budget_cents', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('daily_notify_threshold_cents', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('threshold_notified_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('budget_notified_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('recharge_threshold_cents', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('recharge_in_flight', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('recharge_seq', sa.Integer(), nullable=False, server_default='0'))



def downgrade() -> None:
    with op.batch_alter_table('credit_balance', schema=None) as batch_op:
        batch_op.drop_column('recharge_seq')
        batch_op.drop_column('recharge_in_flight')
        batch_op.drop_column('recharge_threshold_cents')
        batch_op.drop_column('budget_notified_on')
        batch_op.drop_column('threshold_notified_on')
        batch_op.drop_column('daily_notify_threshold_cents')
        batch_op.drop_column('daily_budget_cents')
        batch_op.drop_column('used_today_cents')
        batch_op.drop_column('usage_day')

    with op.batch_alter_table('billing_settings', schema=None) as batch_op:
        batch_op.drop_column('webhook_secret')
        batch_op.drop_column('auto_recharge_disabled_reason')
        batch_op.drop_column('auto_recharge_failures')

    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_key_account_id'))

    op.drop_table('api_key')
    with op.batch_alter_table('webhook_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_attempt_delivery_id'))

    op.drop_table('webhook_attempt')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_delivery_account_created')

    op.drop_table('webhook_delivery')
    op.drop_table('metering_request')
