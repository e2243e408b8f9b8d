"""The usage-credit ledger: every money movement is an append-only entry plus a change to the
cached balance in the same transaction (DESIGN §4). Callers commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.models import Account, CreditBalance, LedgerEntry, utcnow
from app.services.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.services.plans import get_plan

SOURCES = frozenset(
    {"purchase", "auto_recharge", "usage", "invoice_applied", "grant", "refund", "adjustment", "plan_change"}
)
CREDIT_SOURCES = frozenset(SOURCES - {"usage"})


class InsufficientCredits(DomainError):
    status_code = 402
    code = "insufficient_credits"


def credit(
    session: Session,
    *,
    account_id: int,
    amount_cents: int,
    source: str,
    description: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> LedgerEntry:
    """Add credits. A replayed key returns the first entry and moves nothing."""
    return _post(session, account_id, _positive(amount_cents), source, description, idempotency_key, now)


def debit(
    session: Session,
    *,
    account_id: int,
    amount_cents: int,
    source: str = "usage",
    description: str = "",
    idempotency_key: str,
    now: datetime | None = None,
) -> LedgerEntry:
    """Take credits, at most down to minus the overage credit line, else InsufficientCredits."""
    return _post(session, account_id, -_positive(amount_cents), source, description, idempotency_key, now)


def ensure_credit_balance(
    session: Session, account_id: int, overage_credit_line_cents: int | None = None
) -> CreditBalance:
    """The account's balance row, created at zero if missing; a new row takes the given overage
    line or, by default, the one of the account's plan. Safe when two transactions race."""
    row = session.get(CreditBalance, account_id)
    if row is not None:
        return row
    if overage_credit_line_cents is None:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound("No such account.")
        overage_credit_line_cents = get_plan(account.plan_code).overage_credit_line_cents
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.exec(
        insert(CreditBalance)
        .values(account_id=account_id, balance_cents=0, overage_credit_line_cents=overage_credit_line_cents)
        .on_conflict_do_nothing(index_elements=["account_id"])
    )
    return session.get(CreditBalance, account_id)


def set_overage_credit_line(session: Session, account_id: int, overage_credit_line_cents: int) -> CreditBalance:
    """Change the post-paid line (a plan change). A lower line never moves money; it only stops
    further debits while the balance is below it."""
    if overage_credit_line_cents < 0:
        raise ValidationFailed("The overage credit line cannot be negative.")
    row = ensure_credit_balance(session, account_id, overage_credit_line_cents)
    row.overage_credit_line_cents = overage_credit_line_cents
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def balance_of(session: Session, account_id: int) -> int:
    balance = session.exec(select(CreditBalance.balance_cents).where(CreditBalance.account_id == account_id)).first()
    return balance or 0


def ledger_sum(session: Session, account_id: int) -> int:
    """The balance recomputed from the ledger; always equal to the cached one."""
    return session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(LedgerEntry.account_id == account_id)
    ).one()


def _positive(amount_cents: int) -> int:
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise ValidationFailed("The amount must be a positive whole number of cents.", field="amount")
    return amount_cents


def _post(
    session: Session,
    account_id: int,
    delta: int,
    source: str,
    description: str,
    idempotency_key: str,
    now: datetime | None,
) -> LedgerEntry:
    if source not in (SOURCES if delta < 0 else CREDIT_SOURCES):
        raise ValidationFailed(f"Unknown ledger source {source!r}.")
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationFailed("An idempotency key of 1 to 200 characters is required.")
    if (entry := _replay(session, account_id, idempotency_key)) is not None:
        return entry
    now = now or utcnow()
    try:
        # A concurrent transaction may insert the same key after our check: its unique index wins
        # and rolling back to the savepoint undoes our balance change as well.
        with session.begin_nested():
            balance_after = _move_balance(session, account_id, delta, now)
            if balance_after is None and session.get(CreditBalance, account_id) is None:
                ensure_credit_balance(session, account_id)
                balance_after = _move_balance(session, account_id, delta, now)
            if balance_after is None:
                raise InsufficientCredits("Not enough usage credits.")
            entry = LedgerEntry(
                account_id=account_id,
                amount_cents=delta,
                balance_after_cents=balance_after,
                source=source,
                description=description[:500],
                idempotency_key=idempotency_key,
                created_at=now,
            )
            session.add(entry)
            session.flush()
    except IntegrityError:
        entry = _replay(session, account_id, idempotency_key)
        if entry is None:
            raise
    return entry


def _move_balance(session: Session, account_id: int, delta: int, now: datetime) -> int | None:
    """One conditional UPDATE: the new balance, or None when the row is missing or a debit would
    go below minus the overage line."""
    statement = (
        update(CreditBalance)
        .where(CreditBalance.account_id == account_id)
        .values(balance_cents=CreditBalance.balance_cents + delta, updated_at=now)
        .returning(CreditBalance.balance_cents)
    )
    if delta < 0:
        statement = statement.where(
            CreditBalance.balance_cents + delta >= -CreditBalance.overage_credit_line_cents
        )
    return session.exec(statement).scalar_one_or_none()


def _replay(session: Session, account_id: int, idempotency_key: str) -> LedgerEntry | None:
    entry = session.exec(select(LedgerEntry).where(LedgerEntry.idempotency_key == idempotency_key)).first()
    if entry is not None and entry.account_id != account_id:
        raise Conflict("This idempotency key was already used by another account.")
    return entry
