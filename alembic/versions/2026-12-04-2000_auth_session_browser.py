"""auth session browser: the sessions one browser went through by switching accounts

Revision ID: 20261204_auth_session_browser
Revises: 20261204_ledger_entry_api_key
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_auth_session_browser'
down_revision: str | Sequence[str] | None = '20261204_ledger_entry_api_key'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('auth_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('browser', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
        batch_op.create_index('ix_auth_session_browser', ['browser'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('auth_session', schema=None) as batch_op:
        batch_op.drop_index('ix_auth_session_browser')
        batch_op.drop_column('browser')
