"""stripe customer on account: the Stripe customer id moves from billing_settings to the global
account table, so Stripe's webhooks find the account by the customer their objects name and then
the account's rows by (account_id, Stripe id); the lookup indexes on Stripe's ids alone go

Revision ID: 20261204_stripe_customer
Revises: 20261204_account_primary_keys
Create Date: 2026-12-04 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "20261204_stripe_customer"
down_revision: str | Sequence[str] | None = "20261204_account_primary_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The indexes on an id alone that 20261204_account_scoped_uniques kept for the webhooks.
LOOKUP = {
    "payment": ["public_id", "stripe_payment_intent_id", "stripe_checkout_session_id"],
    "tax_registration": ["stripe_tax_id"],
}
CUSTOMER = sqlmodel.sql.sqltypes.AutoString(length=64)


def upgrade() -> None:
    op.add_column("account", sa.Column("stripe_customer_id", CUSTOMER, nullable=False, server_default=""))
    op.create_index("ix_account_stripe_customer_id", "account", ["stripe_customer_id"], unique=False)
    op.execute(
        "UPDATE account SET stripe_customer_id = (SELECT billing_settings.stripe_customer_id FROM billing_settings"
        " WHERE billing_settings.account_id = account.id) WHERE account.id IN (SELECT account_id FROM billing_settings)"
    )
    with op.batch_alter_table("billing_settings") as batch:
        batch.drop_column("stripe_customer_id")
    for table, columns in LOOKUP.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_index(f"ix_{table}_{column}")


def downgrade() -> None:
    for table, columns in LOOKUP.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.create_index(f"ix_{table}_{column}", [column], unique=False)
    with op.batch_alter_table("billing_settings") as batch:
        batch.add_column(sa.Column("stripe_customer_id", CUSTOMER, nullable=False, server_default=""))
    op.execute(
        "UPDATE billing_settings SET stripe_customer_id = (SELECT account.stripe_customer_id FROM account"
        " WHERE account.id = billing_settings.account_id)"
    )
    op.drop_index("ix_account_stripe_customer_id", table_name="account")
    with op.batch_alter_table("account") as batch:
        batch.drop_column("stripe_customer_id")
