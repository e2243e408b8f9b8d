"""payment outcome unknown: when Stripe's answer to a charge was lost, so that the reconciliation
janitor asks Stripe what became of it

Revision ID: 20261204_payment_outcome_unknown
Revises: 20261204_request_id_heartbeat
Create Date: 2026-12-04 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_payment_outcome_unknown'
down_revision: str | Sequence[str] | None = '20261204_request_id_heartbeat'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('payment', sa.Column('outcome_unknown_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index(op.f('ix_payment_outcome_unknown_at'), 'payment', ['outcome_unknown_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_payment_outcome_unknown_at'), table_name='payment')
    op.execute('ALTER TABLE payment DROP COLUMN outcome_unknown_at')
