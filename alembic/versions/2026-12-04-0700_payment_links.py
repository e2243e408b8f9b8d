"""payment links: a Payment names the invoice or plan change it pays, by foreign key

Revision ID: 20261204_payment_links
Revises: 20261122_products
Create Date: 2026-12-04 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '20261204_payment_links'
down_revision: str | Sequence[str] | None = '20261122_products'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_LINKS = (("invoice_id", "invoice", "fk_payment_invoice_id"), ("plan_change_id", "plan_change", "fk_payment_plan_change_id"))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column, table, constraint in _LINKS:
        if sqlite:
            # Not batch mode: recreating `payment` would drop a table that invoices and plan changes
            # reference. SQLite adds a nullable column with its REFERENCES clause in place.
            op.execute(f"ALTER TABLE payment ADD COLUMN {column} INTEGER REFERENCES {table} (id) ON DELETE SET NULL")
        else:
            op.add_column('payment', sa.Column(column, sa.Integer(), nullable=True))
            op.create_foreign_key(constraint, 'payment', table, [column], ['id'], ondelete='SET NULL')
        op.create_index(f'ix_payment_{column}', 'payment', [column], unique=False)
    # Invoice payments were keyed "invoice:<account id>:<invoice public id>:<request key>".
    op.execute(
        "UPDATE payment SET invoice_id = (SELECT invoice.id FROM invoice"
        " WHERE invoice.account_id = payment.account_id"
        " AND payment.idempotency_key LIKE 'invoice:' || CAST(payment.account_id AS VARCHAR) || ':'"
        " || invoice.public_id || ':%')"
        " WHERE payment.method = 'invoice'"
    )
    # A plan change points at its payment.
    op.execute(
        "UPDATE payment SET plan_change_id = (SELECT plan_change.id FROM plan_change"
        " WHERE plan_change.payment_id = payment.id)"
        " WHERE payment.method = 'plan'"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column, _table, constraint in reversed(_LINKS):
        op.drop_index(f'ix_payment_{column}', table_name='payment')
        if not sqlite:
            op.drop_constraint(constraint, 'payment', type_='foreignkey')
            op.drop_column('payment', column)
    # SQLite cannot drop a column that has a REFERENCES clause without recreating the table:
    # there the columns stay, unused.
