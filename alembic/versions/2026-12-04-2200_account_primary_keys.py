"""distributable by account: the primary key of every account table with a serial id is
(account_id, id), and the foreign keys between account tables carry account_id on both sides (a
distributed PostgreSQL such as Citus needs both); pending jobs that name such a row get its
account_id, which their handlers now need to find it

Revision ID: 20261204_account_primary_keys
Revises: 20261204_product_previous_plan
Create Date: 2026-12-04 22:00:00
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision: str = "20261204_account_primary_keys"
down_revision: str | Sequence[str] | None = "20261204_product_previous_plan"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = [
    "account_product",
    "audit_event",
    "chat_conversation",
    "chat_message",
    "credit_grant",
    "credit_hold",
    "ledger_entry",
    "metering_request",
    "payment_method",
    "tax_registration",
    "webhook_delivery",
    "grant_draw",
    "webhook_attempt",
    "payment",
    "invoice",
    "plan_change",
    "invoice_line",
]
# (table, column, parent, the key's name (before and after), the single-column key's ON DELETE)
KEYS = [
    ("grant_draw", "grant_id", "credit_grant", "fk_grant_draw_grant_id_credit_grant", None),
    ("webhook_attempt", "delivery_id", "webhook_delivery", "fk_webhook_attempt_delivery_id_webhook_delivery", None),
    ("payment", "plan_change_id", "plan_change", "fk_payment_plan_change_id", "SET NULL"),
    ("payment", "invoice_id", "invoice", "fk_payment_invoice_id", "SET NULL"),
    ("invoice", "payment_id", "payment", "fk_invoice_payment_id_payment", None),
    ("invoice", "credited_invoice_id", "invoice", "fk_invoice_credited_invoice_id_invoice", None),
    ("plan_change", "payment_id", "payment", "fk_plan_change_payment_id_payment", None),
    ("invoice_line", "invoice_id", "invoice", "fk_invoice_line_invoice_id_invoice", None),
]
# job kind: (the payload's key of the row, its table)
JOB_ROWS = {
    "invoice_issued": ("invoice_id", "invoice"),
    "collect_invoice": ("invoice_id", "invoice"),
    "renewal_unpaid": ("invoice_id", "invoice"),
    "deliver_webhook": ("delivery_id", "webhook_delivery"),
    "hold_expiry": ("hold_id", "credit_hold"),
    "reconcile_payment": ("payment_id", "payment"),
}


def _foreign_key(inspector, table: str, columns: list[str], parent: str) -> str:
    for key in inspector.get_foreign_keys(table):
        if key["constrained_columns"] == columns and key["referred_table"] == parent:
            return key["name"]
    raise LookupError(f"no foreign key {table}{columns} -> {parent}")


def _replace_primary_keys(columns: list[str]) -> None:
    inspector = sa.inspect(op.get_bind())
    for table in TABLES:
        name = inspector.get_pk_constraint(table)["name"]
        op.drop_constraint(name, table, type_="primary")
        op.create_primary_key(name, table, columns)


def upgrade() -> None:
    _add_account_to_pending_jobs()
    # SQLite cannot auto-increment a composite key: its tables keep `id INTEGER PRIMARY KEY` (the
    # rowid) and their single-column keys, and nothing distributes a SQLite database.
    if op.get_bind().dialect.name == "sqlite":
        return
    inspector = sa.inspect(op.get_bind())
    for table, column, parent, _name, _ondelete in KEYS:
        op.drop_constraint(_foreign_key(inspector, table, [column], parent), table, type_="foreignkey")
    _replace_primary_keys(["account_id", "id"])
    # Without ON DELETE SET NULL, which would null account_id too: nothing deletes these rows.
    for table, column, parent, name, _ondelete in KEYS:
        op.create_foreign_key(name, table, parent, ["account_id", column], ["account_id", "id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    inspector = sa.inspect(op.get_bind())
    for table, column, parent, _name, _ondelete in KEYS:
        op.drop_constraint(_foreign_key(inspector, table, ["account_id", column], parent), table, type_="foreignkey")
    _replace_primary_keys(["id"])
    for table, column, parent, name, ondelete in KEYS:
        op.create_foreign_key(name, table, parent, [column], ["id"], ondelete=ondelete)


def _add_account_to_pending_jobs() -> None:
    """The handlers find the row by (account_id, id) now. A job whose row is gone would have done
    nothing: it is finished."""
    bind = op.get_bind()
    job = sa.table(
        "job",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("payload", sa.Text()),
        sa.column("status", sa.String()),
        sa.column("finished_at", sa.DateTime()),
    )
    pending = bind.execute(
        sa.select(job.c.id, job.c.kind, job.c.payload).where(job.c.status == "pending", job.c.kind.in_(list(JOB_ROWS)))
    ).all()
    for job_id, kind, payload in pending:
        values = json.loads(payload)
        if "account_id" in values:
            continue
        key, table = JOB_ROWS[kind]
        row = sa.table(table, sa.column("id", sa.Integer()), sa.column("account_id", sa.Integer()))
        account_id = bind.execute(sa.select(row.c.account_id).where(row.c.id == values[key])).scalar()
        if account_id is None:
            change = {"status": "done", "finished_at": datetime.now(UTC)}
        else:
            change = {"payload": json.dumps({**values, "account_id": account_id})}
        bind.execute(sa.update(job).where(job.c.id == job_id).values(**change))
