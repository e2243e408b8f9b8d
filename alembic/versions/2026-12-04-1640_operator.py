"""operator back office: operator staff, their sessions, single-use tokens and API keys, and
an account's suspension

Revision ID: 20261204_operator
Revises: 20261204_payment_outcome_unknown
Create Date: 2026-12-04 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_operator'
down_revision: str | Sequence[str] | None = '20261204_payment_outcome_unknown'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString
_time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.add_column('account', sa.Column('suspended_at', _time(), nullable=True))
    op.create_table(
        'operator_user',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', _text(length=32), nullable=False),
        sa.Column('email', _text(length=320), nullable=False),
        sa.Column('full_name', _text(length=200), nullable=False),
        sa.Column('password_hash', _text(length=300), nullable=False),
        sa.Column('status', _text(length=16), nullable=False),
        sa.Column('created_at', _time(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_user')),
        sa.UniqueConstraint('public_id', name=op.f('uq_operator_user_public_id')),
        sa.UniqueConstraint('email', name=op.f('uq_operator_user_email')),
    )
    op.create_table(
        'operator_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', _text(length=64), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=False),
        sa.Column('created_at', _time(), nullable=False),
        sa.Column('expires_at', _time(), nullable=False),
        sa.Column('last_seen_at', _time(), nullable=False),
        sa.Column('revoked_at', _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ['operator_id'], ['operator_user.id'], name=op.f('fk_operator_session_operator_id_operator_user')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_session')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_operator_session_token_hash')),
    )
    op.create_index(op.f('ix_operator_session_operator_id'), 'operator_session', ['operator_id'])
    op.create_table(
        'operator_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=False),
        sa.Column('purpose', _text(length=16), nullable=False),
        sa.Column('token_hash', _text(length=64), nullable=False),
        sa.Column('binding_hash', _text(length=64), nullable=False),
        sa.Column('created_at', _time(), nullable=False),
        sa.Column('expires_at', _time(), nullable=False),
        sa.Column('used_at', _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ['operator_id'], ['operator_user.id'], name=op.f('fk_operator_token_operator_id_operator_user')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_token')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_operator_token_token_hash')),
    )
    op.create_index(op.f('ix_operator_token_operator_id'), 'operator_token', ['operator_id'])
    op.create_table(
        'operator_api_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', _text(length=32), nullable=False),
        sa.Column('name', _text(length=100), nullable=False),
        sa.Column('prefix', _text(length=32), nullable=False),
        sa.Column('secret_hash', _text(length=64), nullable=False),
        sa.Column('created_by_operator_id', sa.Integer(), nullable=True),
        sa.Column('created_at', _time(), nullable=False),
        sa.Column('last_used_at', _time(), nullable=True),
        sa.Column('deleted_at', _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ['created_by_operator_id'],
            ['operator_user.id'],
            name=op.f('fk_operator_api_key_created_by_operator_id_operator_user'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_api_key')),
        sa.UniqueConstraint('public_id', name=op.f('uq_operator_api_key_public_id')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_operator_api_key_secret_hash')),
    )


def downgrade() -> None:
    op.drop_table('operator_api_key')
    op.drop_index(op.f('ix_operator_token_operator_id'), table_name='operator_token')
    op.drop_table('operator_token')
    op.drop_index(op.f('ix_operator_session_operator_id'), table_name='operator_session')
    op.drop_table('operator_session')
    op.drop_table('operator_user')
    op.execute('ALTER TABLE account DROP COLUMN suspended_at')
