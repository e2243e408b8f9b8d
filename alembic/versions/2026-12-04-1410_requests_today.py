"""requests today: the metered calls of the metering row's UTC day, for the plan's daily request limit

Revision ID: 20261204_requests_today
Revises: 20261204_handoff_binding
Create Date: 2026-12-04 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '20261204_requests_today'
down_revision: str | Sequence[str] | None = '20261204_handoff_binding'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Counting starts at the upgrade: the calls made earlier that day are not counted.
    op.add_column('credit_balance', sa.Column('requests_today', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    op.execute('ALTER TABLE credit_balance DROP COLUMN requests_today')
