"""payment refunds: how much of a payment Stripe has refunded

Revision ID: 20261204_payment_refunds
Revises: 20261204_payment_links
Create Date: 2026-12-04 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '20261204_payment_refunds'
down_revision: str | Sequence[str] | None = '20261204_payment_links'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('payment', sa.Column('refunded_cents', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): batch mode would recreate `payment`, which other tables reference.
    op.execute("ALTER TABLE payment DROP COLUMN refunded_cents")
