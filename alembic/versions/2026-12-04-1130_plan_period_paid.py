"""plan period paid: what a renewal invoice pays for the plan, and how a plan change's credit was given

Revision ID: 20261204_plan_period_paid
Revises: 20261204_payment_refunds
Create Date: 2026-12-04 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '20261204_plan_period_paid'
down_revision: str | Sequence[str] | None = '20261204_payment_refunds'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('invoice', sa.Column('plan_cents', sa.BigInteger(), nullable=False, server_default='0'))
    op.add_column('plan_change', sa.Column('credited_cents', sa.BigInteger(), nullable=False, server_default='0'))
    op.add_column('plan_change', sa.Column('invoice_cents', sa.BigInteger(), nullable=False, server_default='0'))
    # The period close's plan line reads "<plan> plan seats, <period>".
    op.execute(
        "UPDATE invoice SET plan_cents = (SELECT COALESCE(SUM(invoice_line.amount_cents), 0) FROM invoice_line"
        " WHERE invoice_line.invoice_id = invoice.id AND invoice_line.description LIKE '% plan seats, %')"
        " WHERE invoice.source = 'period_close'"
    )
    # Until now a negative amount was credited to the balance in full.
    op.execute("UPDATE plan_change SET credited_cents = -amount_cents WHERE amount_cents < 0 AND status = 'applied'")


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): batch mode would recreate tables that others reference.
    for table, column in (('plan_change', 'invoice_cents'), ('plan_change', 'credited_cents'), ('invoice', 'plan_cents')):
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
