"""distributable by account: webhook_attempt and invoice_line carry account_id; the unique
constraints of account tables include account_id (a distributed PostgreSQL such as Citus enforces
only those); ids Stripe's webhooks look up alone keep a plain index

Revision ID: 20261204_account_scoped_uniques
Revises: 20261204_operator
Create Date: 2026-12-04 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '20261204_account_scoped_uniques'
down_revision: str | Sequence[str] | None = '20261204_operator'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (column, new constraint name) whose unique constraint becomes (account_id, column)
SCOPED = {
    'ledger_entry': [
        ('public_id', 'uq_ledger_entry_account_public_id'),
        ('idempotency_key', 'uq_ledger_entry_account_idempotency_key'),
    ],
    'payment': [
        ('public_id', 'uq_payment_account_public_id'),
        ('idempotency_key', 'uq_payment_account_idempotency_key'),
        ('stripe_payment_intent_id', 'uq_payment_account_stripe_payment_intent_id'),
        ('stripe_checkout_session_id', 'uq_payment_account_stripe_checkout_session_id'),
    ],
    'payment_method': [('stripe_payment_method_id', 'uq_payment_method_account_stripe_id')],
    'tax_registration': [
        ('public_id', 'uq_tax_registration_account_public_id'),
        ('stripe_tax_id', 'uq_tax_registration_account_stripe_tax_id'),
    ],
    'webhook_delivery': [('public_id', 'uq_webhook_delivery_account_public_id')],
    'invoice': [
        ('public_id', 'uq_invoice_account_public_id'),
        ('idempotency_key', 'uq_invoice_account_idempotency_key'),
    ],
    'plan_change': [
        ('public_id', 'uq_plan_change_account_public_id'),
        ('idempotency_key', 'uq_plan_change_account_idempotency_key'),
    ],
}
# Found by the id alone (Stripe's webhooks name it, not the account).
LOOKUP = {
    'payment': ['public_id', 'stripe_payment_intent_id', 'stripe_checkout_session_id'],
    'tax_registration': ['stripe_tax_id'],
}
_UNNAMED_FK = {'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s'}
# child table: (parent table, the child's key to it)
CHILDREN = {'webhook_attempt': ('webhook_delivery', 'delivery_id'), 'invoice_line': ('invoice', 'invoice_id')}


def upgrade() -> None:
    for child, (parent, key) in CHILDREN.items():
        with op.batch_alter_table(child) as batch:
            batch.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
        op.execute(f'UPDATE {child} SET account_id = (SELECT {parent}.account_id FROM {parent} WHERE {parent}.id = {child}.{key})')
        with op.batch_alter_table(child) as batch:
            batch.alter_column('account_id', existing_type=sa.Integer(), nullable=False)
            batch.create_foreign_key(op.f(f'fk_{child}_account_id_account'), 'account', ['account_id'], ['id'])
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, columns in SCOPED.items():
        # SQLite rebuilds the table; its reflection loses ON DELETE of the two keys payment got by
        # ADD COLUMN (unnamed): named by this convention, they are dropped and made again, whole.
        with op.batch_alter_table(table, naming_convention=_UNNAMED_FK) as batch:
            for column, name in columns:
                batch.drop_constraint(f'uq_{table}_{column}', type_='unique')
                batch.create_unique_constraint(name, ['account_id', column])
            for column in LOOKUP.get(table, []):
                batch.create_index(f'ix_{table}_{column}', [column], unique=False)
            if sqlite and table == 'payment':
                for column, target in (('invoice_id', 'invoice'), ('plan_change_id', 'plan_change')):
                    batch.drop_constraint(f'fk_payment_{column}_{target}', type_='foreignkey')
                    batch.create_foreign_key(f'fk_payment_{column}', target, [column], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    for table, columns in SCOPED.items():
        with op.batch_alter_table(table) as batch:
            for column in LOOKUP.get(table, []):
                batch.drop_index(f'ix_{table}_{column}')
            for column, name in columns:
                batch.drop_constraint(name, type_='unique')
                batch.create_unique_constraint(f'uq_{table}_{column}', [column])
    for child in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.drop_constraint(f'fk_{child}_account_id_account', type_='foreignkey')
            batch.drop_column('account_id')
