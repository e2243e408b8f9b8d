"""credit grants: promotional and operator-granted credits with an expiry and a priority, which
debit entries drew from each (grant_draw), and how far the allocation has walked each account's
ledger (grant_cursor)

Revision ID: 20261204_credit_grants
Revises: 20261204_auth_session_browser
Create Date: 2026-12-04 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_credit_grants'
down_revision: str | Sequence[str] | None = '20261204_auth_session_browser'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('credit_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('ledger_entry_id', sa.BigInteger(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('remaining_cents', sa.BigInteger(), nullable=False),
    sa.Column('expired', sa.Boolean(), nullable=False),
    sa.Column('expired_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_credit_grant_account_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_grant')),
    sa.UniqueConstraint('account_id', 'ledger_entry_id', name='uq_credit_grant_account_ledger_entry_id'),
    sa.UniqueConstraint('account_id', 'public_id', name='uq_credit_grant_account_public_id')
    )
    with op.batch_alter_table('credit_grant', schema=None) as batch_op:
        batch_op.create_index('ix_credit_grant_account_open', ['account_id', 'expired', 'expires_at'], unique=False)
        batch_op.create_index('ix_credit_grant_due', ['expired', 'expires_at'], unique=False)

    op.create_table('grant_cursor',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('last_entry_id', sa.BigInteger(), nullable=False),
    sa.Column('purchased_cents', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_grant_cursor_account_id_account')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_grant_cursor'))
    )
    op.create_table('grant_draw',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('ledger_entry_id', sa.BigInteger(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_grant_draw_account_id_account')),
    sa.ForeignKeyConstraint(['grant_id'], ['credit_grant.id'], name=op.f('fk_grant_draw_grant_id_credit_grant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_draw')),
    sa.UniqueConstraint('account_id', 'ledger_entry_id', 'grant_id', name='uq_grant_draw_account_entry_grant')
    )
    with op.batch_alter_table('grant_draw', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_draw_grant_id'), ['grant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('grant_draw', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_draw_grant_id'))

    op.drop_table('grant_draw')
    op.drop_table('grant_cursor')
    with op.batch_alter_table('credit_grant', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_grant_due')
        batch_op.drop_index('ix_credit_grant_account_open')

    op.drop_table('credit_grant')
