"""profile: the user's own picture

Revision ID: 20261122_profile
Revises: 20261122_plans
Create Date: 2026-11-22 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261122_profile'
down_revision: str | Sequence[str] | None = '20261122_plans'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('picture_path', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('picture_path')
