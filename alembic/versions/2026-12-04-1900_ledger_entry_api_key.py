"""ledger entry api key: the API key a usage debit was made with

Revision ID: 20261204_ledger_entry_api_key
Revises: 20261204_auto_recharge_ceiling
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '20261204_ledger_entry_api_key'
down_revision: str | Sequence[str] | None = '20261204_auto_recharge_ceiling'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable without a default: PostgreSQL adds it without rewriting the ledger.
    op.add_column('ledger_entry', sa.Column('api_key_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_column('api_key_id')
