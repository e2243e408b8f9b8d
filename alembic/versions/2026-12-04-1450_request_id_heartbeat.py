"""job request id and worker heartbeat: jobs carry the id of the request that caused them, and
job-running processes write a heartbeat that /api/ready reads

Revision ID: 20261204_request_id_heartbeat
Revises: 20261204_requests_today
Create Date: 2026-12-04 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_request_id_heartbeat'
down_revision: str | Sequence[str] | None = '20261204_requests_today'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('job', sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.create_table(
        'worker_heartbeat',
        sa.Column('worker', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('beat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('worker'),
    )


def downgrade() -> None:
    op.drop_table('worker_heartbeat')
    op.execute('ALTER TABLE job DROP COLUMN request_id')
