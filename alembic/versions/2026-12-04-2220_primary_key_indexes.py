"""primary key indexes: on PostgreSQL the (account_id, id) indexes of ledger_entry, audit_event and
chat_message duplicate the primary key (account_id, id) since 20261204_account_primary_keys, and
cost a write on every insert: dropped there; SQLite keeps them (its primary key is the rowid alone)

Revision ID: 20261204_primary_key_indexes
Revises: 20261204_stripe_customer
Create Date: 2026-12-04 22:20:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = "20261204_primary_key_indexes"
down_revision: str | Sequence[str] | None = "20261204_stripe_customer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ledger_entry": "ix_ledger_entry_account_id_id",
    "audit_event": "ix_audit_event_account_id_id",
    "chat_message": "ix_chat_message_account_id_id",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, index in INDEXES.items():
        op.drop_index(index, table_name=table)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, index in INDEXES.items():
        op.create_index(index, table, ["account_id", "id"])
