"""product previous plan: the plan a product change replaced, restored when its payment fails
after 3-D Secure

Revision ID: 20261204_product_previous_plan
Revises: 20261204_operator_view_as
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_product_previous_plan'
down_revision: str | Sequence[str] | None = '20261204_operator_view_as'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'account_product',
        sa.Column(
            'previous_plan_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default=''
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table('account_product', schema=None) as batch_op:
        batch_op.drop_column('previous_plan_code')
