"""auth attempt: failed sign-ins, reset requests and wrong current passwords, counted per email and per IP

Revision ID: 20261204_auth_attempt
Revises: 20261204_invoice_collection
Create Date: 2026-12-04 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_auth_attempt'
down_revision: str | Sequence[str] | None = '20261204_invoice_collection'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('auth_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('ip_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_attempt'))
    )
    op.create_index('ix_auth_attempt_kind_email_created', 'auth_attempt', ['kind', 'email', 'created_at'])
    op.create_index('ix_auth_attempt_kind_ip_created', 'auth_attempt', ['kind', 'ip_key', 'created_at'])
    op.create_index('ix_auth_attempt_created', 'auth_attempt', ['created_at'])
    # Failures counted only for 15 minutes: nothing worth carrying over.
    op.drop_index('ix_sign_in_failure_email_created', table_name='sign_in_failure')
    op.drop_table('sign_in_failure')


def downgrade() -> None:
    op.create_table('sign_in_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('ip_address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_failure'))
    )
    op.create_index('ix_sign_in_failure_email_created', 'sign_in_failure', ['email', 'created_at'])
    op.drop_index('ix_auth_attempt_created', table_name='auth_attempt')
    op.drop_index('ix_auth_attempt_kind_ip_created', table_name='auth_attempt')
    op.drop_index('ix_auth_attempt_kind_email_created', table_name='auth_attempt')
    op.drop_table('auth_attempt')
