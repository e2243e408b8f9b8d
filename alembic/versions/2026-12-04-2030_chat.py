"""chat: one conversation per account with the operator's staff, its messages, and how far each
user and the staff have read

Revision ID: 20261204_chat
Revises: 20261204_holds_key_budgets
Create Date: 2026-12-04 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_chat'
down_revision: str | Sequence[str] | None = '20261204_holds_key_budgets'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString
_time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.add_column('user', sa.Column('chat_read_id', sa.Integer(), nullable=False, server_default='0'))
    op.create_table(
        'chat_conversation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('last_message_id', sa.Integer(), nullable=False),
        sa.Column('last_message_at', _time(), nullable=False),
        sa.Column('operator_read_id', sa.Integer(), nullable=False),
        sa.Column('created_at', _time(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_chat_conversation_account_id_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_conversation')),
        sa.UniqueConstraint('account_id', name=op.f('uq_chat_conversation_account_id')),
    )
    op.create_index('ix_chat_conversation_last_message_id', 'chat_conversation', ['last_message_id'])
    op.create_table(
        'chat_message',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('author', _text(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('operator_id', sa.Integer(), nullable=True),
        sa.Column('author_name', _text(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', _time(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_chat_message_account_id_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_message')),
    )
    op.create_index('ix_chat_message_account_id_id', 'chat_message', ['account_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_chat_message_account_id_id', table_name='chat_message')
    op.drop_table('chat_message')
    op.drop_index('ix_chat_conversation_last_message_id', table_name='chat_conversation')
    op.drop_table('chat_conversation')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('chat_read_id')
