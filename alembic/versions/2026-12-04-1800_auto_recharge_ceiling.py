"""auto recharge ceiling: at most so much of automatic top-ups per calendar month, the pause it
causes and the month its email went out

Revision ID: 20261204_auto_recharge_ceiling
Revises: 20261204_people
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_auto_recharge_ceiling'
down_revision: str | Sequence[str] | None = '20261204_people'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('billing_settings', sa.Column('auto_recharge_monthly_ceiling_cents', sa.BigInteger(), nullable=True))
    op.add_column(
        'billing_settings', sa.Column('auto_recharge_paused_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
    )
    op.add_column('billing_settings', sa.Column('auto_recharge_ceiling_emailed_for', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('billing_settings', schema=None) as batch_op:
        batch_op.drop_column('auto_recharge_ceiling_emailed_for')
        batch_op.drop_column('auto_recharge_paused_until')
        batch_op.drop_column('auto_recharge_monthly_ceiling_cents')
