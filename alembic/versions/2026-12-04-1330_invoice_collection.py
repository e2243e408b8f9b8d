"""invoice collection: how many off-session charges of a renewal failed, and when the next is

Revision ID: 20261204_invoice_collection
Revises: 20261204_plan_period_paid
Create Date: 2026-12-04 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_invoice_collection'
down_revision: str | Sequence[str] | None = '20261204_plan_period_paid'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('invoice', sa.Column('failed_collections', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('invoice', sa.Column('next_collection_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): batch mode would recreate `invoice`, which other tables reference.
    for column in ('next_collection_at', 'failed_collections'):
        op.execute(f'ALTER TABLE invoice DROP COLUMN {column}')
