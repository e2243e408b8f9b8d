"""operator view as: an operator session (and its one-minute code) that views one account's console

Revision ID: 20261204_operator_view_as
Revises: 20261204_usage_rollup
Create Date: 2026-12-04 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '20261204_operator_view_as'
down_revision: str | Sequence[str] | None = '20261204_usage_rollup'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('operator_session', 'operator_token'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('viewing_account_id', sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                f'fk_{table}_viewing_account_id_account', 'account', ['viewing_account_id'], ['id']
            )


def downgrade() -> None:
    for table in ('operator_session', 'operator_token'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_viewing_account_id_account', type_='foreignkey')
            batch_op.drop_column('viewing_account_id')
