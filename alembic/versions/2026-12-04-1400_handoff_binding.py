"""handoff binding: a sign-in code works only with the cookie of the browser that signed in

Revision ID: 20261204_handoff_binding
Revises: 20261204_auth_attempt
Create Date: 2026-12-04 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_handoff_binding'
down_revision: str | Sequence[str] | None = '20261204_auth_attempt'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'user_token',
        sa.Column('binding_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): batch mode would recreate a table that others reference.
    op.execute('ALTER TABLE user_token DROP COLUMN binding_hash')
