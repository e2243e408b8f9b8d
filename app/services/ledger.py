"""The usage-credit ledger: every money movement is an append-only entry plus a change to the
cached balance in the same transaction (DESIGN §4). Callers commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    TextClause,
    Update,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    not_,
    null,
    or_,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import DomainError, NotFound, ValidationFailed
from app.jobs.queue import enqueue
from app.models import Account, ApiKey, CreditBalance, CreditHold, LedgerEntry, utcnow
from app.services import live
from app.services.money import format_usd
from app.services.plans import PLANS, get_plan

SOURCES = frozenset(
    {
        "purchase",
        "auto_recharge",
        "usage",
        "invoice_applied",
        "grant",
        "refund",
        "dispute",
        "adjustment",
        "plan_change",
        "expired",
    }
)
# What a credit grant had left at its expiry (app.services.grants): neither usage nor credit.
EXPIRED = "expired"
CREDIT_SOURCES = frozenset(SOURCES - {"usage", EXPIRED})
# Money Stripe gave back to the payer: taken back whatever balance it leaves (see `take_back`).
TAKEN_BACK_SOURCES = frozenset({"refund", "dispute"})


class InsufficientCredits(DomainError):
    status_code = 402
    code = "insufficient_credits"


class AccountSuspended(DomainError):
    """An operator suspended the account: its metered calls are refused until it is reactivated."""

    status_code = 403
    code = "account_suspended"

    def __init__(self):
        super().__init__("This account is suspended. Contact the service's support to have it reactivated.")


class DailyRequestLimitExceeded(DomainError):
    """The account's plan allows this many API requests (usage debits) per UTC day; the count
    starts again at midnight UTC."""

    status_code = 429
    code = "daily_request_limit_exceeded"

    def __init__(self, *, plan_name: str, limit: int, retry_after_seconds: int):
        super().__init__(
            f"Account limit reached: your {plan_name} plan includes {limit:,} API requests a day (UTC), all used "
            "today; the count starts again at midnight UTC. Upgrade your plan for more."
        )
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds


def seconds_to_midnight_utc(now: datetime) -> int:
    """Retry-After for a refusal that lasts the UTC day."""
    midnight = datetime.combine(utc_day(now) + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds() + 0.999))


class KeyBudgetExceeded(DomainError):
    """The call would take the API key's usage today (UTC), plus its open holds, past the key's
    own daily budget; the account's other keys are not affected."""

    status_code = 429
    code = "key_budget_exceeded"

    def __init__(self, *, budget_cents: int, used_cents: int, retry_after_seconds: int):
        left = max(budget_cents - used_cents, 0)
        super().__init__(
            f"This call would take this API key's usage past its daily budget: {format_usd(left)} of "
            f"{format_usd(budget_cents)} is left today (UTC), and the budget starts again at midnight UTC."
        )
        self.retry_after_seconds = retry_after_seconds


class DailyBudgetExceeded(DomainError):
    """The call would take today's (UTC) usage past the spend-management budget; the budget
    starts again at midnight UTC."""

    status_code = 429
    code = "daily_budget_exceeded"

    def __init__(self, *, budget_cents: int, used_today_cents: int, retry_after_seconds: int, held_cents: int = 0):
        left = max(budget_cents - used_today_cents - held_cents, 0)
        super().__init__(
            f"This call would take today's usage past the daily budget: {format_usd(left)} of "
            f"{format_usd(budget_cents)} is left today (UTC), and the budget starts again at midnight UTC."
        )
        self.budget_cents = budget_cents
        self.used_today_cents = used_today_cents
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class BalanceAfter:
    """The metering row as a debit left it."""

    balance_cents: int
    used_today_cents: int
    overage_credit_line_cents: int
    daily_budget_cents: int | None
    held_cents: int = 0

    @property
    def available_cents(self) -> int:
        """DESIGN §5: min(balance + overage line, budget − used today), never below zero, less
        what open holds reserve (from both: a hold's capture counts as usage)."""
        available = self.balance_cents + self.overage_credit_line_cents
        if self.daily_budget_cents is not None:
            available = min(available, self.daily_budget_cents - self.used_today_cents)
        return max(available - self.held_cents, 0)


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
    """Take credits, at most down to minus the overage credit line, else InsufficientCredits.
    Usage also counts towards today's (UTC) spend: a usage debit that would take it past the daily
    budget is DailyBudgetExceeded (and starts the budget notification, once a day). A debit that
    crosses a threshold starts its notification or the auto recharge as background work in the
    same transaction (see `_after_usage`)."""
    return _post(session, account_id, -_positive(amount_cents), source, description, idempotency_key, now)


def take_back(
    session: Session,
    *,
    account_id: int,
    amount_cents: int,
    source: str,
    description: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> LedgerEntry:
    """Take back credits whose money Stripe returned (source "refund" or "dispute"). Unlike
    `debit`, the balance may go below minus the overage line: the money is gone either way. It
    starts nothing (no auto recharge charges a card that was just refunded). A replayed key
    returns the first entry and moves nothing."""
    if source not in TAKEN_BACK_SOURCES:
        raise ValidationFailed(f"Unknown ledger source {source!r}.")
    return _post(
        session, account_id, -_positive(amount_cents), source, description, idempotency_key, now, unchecked=True
    )


def expire(
    session: Session,
    *,
    account_id: int,
    amount_cents: int,
    description: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> LedgerEntry:
    """Take off what an expiring credit grant has left (source "expired"). Like `take_back` it
    ignores the overage line and starts nothing: the grant's credits are part of the balance,
    so this never takes more than is there. A replayed key returns the first entry."""
    return _post(
        session, account_id, -_positive(amount_cents), EXPIRED, description, idempotency_key, now, unchecked=True
    )


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
    row = session.get(CreditBalance, account_id)
    assert row is not None  # inserted above, or by a concurrent transaction
    return row


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


def suspended(session: Session, account_id: int) -> bool:
    return session.exec(select(Account.suspended_at).where(Account.id == account_id)).first() is not None


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


def debit_usage(
    session: Session,
    *,
    account_id: int,
    amount_cents: int,
    description: str = "",
    idempotency_key: str,
    now: datetime | None = None,
    api_key_id: int | None = None,
) -> tuple[LedgerEntry, BalanceAfter | None]:
    """A usage debit (the metering API, made with the key `api_key_id`, whose daily budget it
    counts against) and the metering row it left; None for a replayed key."""
    return _post(
        session,
        account_id,
        -_positive(amount_cents),
        "usage",
        description,
        idempotency_key,
        now,
        True,
        api_key_id=api_key_id,
    )


def _post(
    session: Session,
    account_id: int,
    delta: int,
    source: str,
    description: str,
    idempotency_key: str,
    now: datetime | None,
    with_balance: bool = False,
    unchecked: bool = False,
    api_key_id: int | None = None,
):
    if source not in (SOURCES if delta < 0 else CREDIT_SOURCES):
        raise ValidationFailed(f"Unknown ledger source {source!r}.")
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationFailed("An idempotency key of 1 to 200 characters is required.")
    if (entry := _replay(session, account_id, idempotency_key)) is not None:
        return (entry, None) if with_balance else entry
    live.mark(session, account_id)
    now = now or utcnow()
    after: BalanceAfter | None = None
    try:
        # A concurrent transaction may insert the same key after our check: its unique index wins
        # and rolling back to the savepoint undoes our balance change as well.
        with session.begin_nested():
            if source == "usage" and api_key_id is not None:
                _count_on_key(session, account_id, api_key_id, -delta, now)
            row = _move_balance(session, account_id, delta, now, source == "usage", unchecked)
            if row is None and session.get(CreditBalance, account_id) is None:
                ensure_credit_balance(session, account_id)
                row = _move_balance(session, account_id, delta, now, source == "usage", unchecked)
            if row is None:
                raise (
                    _refusal(session, account_id, -delta, now)
                    if source == "usage"
                    else InsufficientCredits("Not enough usage credits.")
                )
            entry = LedgerEntry(
                account_id=account_id,
                amount_cents=delta,
                balance_after_cents=row.balance_cents,
                source=source,
                description=description[:500],
                idempotency_key=idempotency_key,
                created_at=now,
                api_key_id=api_key_id,
            )
            session.add(entry)
            session.flush()
            after = after_move(session, account_id, row, now) if delta < 0 and not unchecked else None
    except IntegrityError:
        entry = _replay(session, account_id, idempotency_key)
        if entry is None:
            raise
    except DailyBudgetExceeded as refusal:
        # Today's usage may stay below the budget, so the budget notification also starts at the
        # first refusal of the day (once a day, as at a debit that reaches the budget exactly).
        _notify_once(
            session,
            account_id,
            "budget",
            _c.budget_notified_on,
            utc_day(now),
            refusal.used_today_cents,
            refusal.budget_cents,
        )
        raise
    return (entry, after) if with_balance else entry


METERING_COLUMNS = (
    CreditBalance.balance_cents,
    CreditBalance.overage_credit_line_cents,
    CreditBalance.usage_day,
    CreditBalance.used_today_cents,
    CreditBalance.daily_budget_cents,
    CreditBalance.daily_notify_threshold_cents,
    CreditBalance.threshold_notified_on,
    CreditBalance.budget_notified_on,
    CreditBalance.recharge_threshold_cents,
    CreditBalance.recharge_in_flight,
    CreditBalance.held_cents,
)

# The debit rule, written once (DESIGN §4, §5). Every debit is one conditional UPDATE of the
# metering row built here from these expressions; the console's debits run them through the ORM
# (`_move_balance`), and the metering API's fast path compiles the same UPDATE for PostgreSQL and
# SQLite (`quiet_usage_debit`, in app/services/metering.py). Bound parameters: AMOUNT (cents taken;
# negative for a credit), TODAY (the UTC day of the debit), NOW, ACCOUNT.
_c = sa_inspect(CreditBalance).columns
AMOUNT = bindparam("amount", type_=BigInteger())
TODAY = bindparam("today", type_=_c.usage_day.type)
NOW = bindparam("now", type_=_c.updated_at.type)
ACCOUNT = bindparam("account", type_=_c.account_id.type)

_balance = _c.balance_cents
_line = _c.overage_credit_line_cents
_budget = _c.daily_budget_cents
_threshold = _c.daily_notify_threshold_cents
_recharge_at = _c.recharge_threshold_cents
_held = _c.held_cents

# Usage counted today: what the row says for today, nothing when its day is another. Before an
# UPDATE (in WHERE and SET) that is the usage before the debit; in RETURNING, after it.
USED_TODAY = case((_c.usage_day == TODAY, _c.used_today_cents), else_=literal_column("0"))
BALANCE_AFTER = _balance - AMOUNT
USED_AFTER = USED_TODAY + AMOUNT
# What open holds leave of the balance (held_cents is 0 on an account without holds).
FREE = _balance - _held
FREE_AFTER = FREE - AMOUNT
# Metered calls counted today, like USED_TODAY.
REQUESTS_TODAY = case((_c.usage_day == TODAY, _c.requests_today), else_=literal_column("0"))
# The plan's API requests per UTC day (plans.PLANS, the figure Info shows), read from the account
# row in the same statement; NULL for a plan without the limit. Literals, not bound parameters,
# so the metering fast path compiles it as it is.
DAILY_REQUEST_LIMIT = (
    select(
        case(
            *(
                (col(Account.plan_code) == literal_column(f"'{plan.code}'"), literal_column(str(limit)))
                for plan in PLANS.values()
                if (limit := plan.limit("daily_requests")) is not None
            ),
            else_=null(),
        )
    )
    .where(col(Account.id) == _c.account_id)
    .scalar_subquery()
)
# An account an operator suspended is debited no usage (the metering fast path compiles this too).
NOT_SUSPENDED = select(col(Account.suspended_at)).where(col(Account.id) == _c.account_id).scalar_subquery().is_(None)
# A plan without the limit compares with the largest BIGINT, so the subquery is evaluated once.
WITHIN_REQUEST_LIMIT = func.coalesce(DAILY_REQUEST_LIMIT, literal_column(str(2**63 - 1))) > REQUESTS_TODAY
# A debit (or a new hold) takes what open holds leave, at most down to minus the overage credit line...
WITHIN_OVERAGE_LINE = -_line <= FREE_AFTER
# ...and usage only up to the daily budget, less what open holds may still capture: a call that
# would take today's usage past it is refused, a call of exactly what is left passes
# (BalanceAfter.available_cents).
WITHIN_BUDGET = or_(_budget.is_(None), _budget >= USED_AFTER + _held)


def recharge_due(free: ColumnElement[int]) -> ColumnElement[bool]:
    """The auto recharge is due when `free` (the balance less open holds) is at or below its armed
    threshold and none is in flight."""
    return and_(_recharge_at.is_not(None), not_(_c.recharge_in_flight), free <= _recharge_at)


# Spend notifications: (kind, line, the column of the day it last fired).
NOTIFICATIONS = (
    ("threshold", _threshold, _c.threshold_notified_on),
    ("budget", _budget, _c.budget_notified_on),
)


def notification_due(line: ColumnElement[Any], notified_on: ColumnElement[Any], used: ColumnElement[int]):
    """A spend notification is due once a day, when `used` has reached its line."""
    return and_(line.is_not(None), used >= line, notified_on.is_distinct_from(TODAY))


def _debit_update(
    *where: ColumnElement[bool] | TextClause, usage: bool, returning, held: ColumnElement[Any] | None = None
) -> Update:
    values: dict[str, Any] = {"balance_cents": BALANCE_AFTER, "updated_at": NOW}
    if usage:
        values.update(usage_day=TODAY, used_today_cents=USED_AFTER, requests_today=REQUESTS_TODAY + literal_column("1"))
    if held is not None:
        values["held_cents"] = held
    return update(CreditBalance).where(*where).values(values).returning(*returning)


# What a console debit's UPDATE returns: METERING_COLUMNS as the debit left them, today's usage
# after it, and which of the after-debit work is due (`after_move`).
_MOVED = (
    *METERING_COLUMNS,
    USED_TODAY.label("used_today"),
    recharge_due(FREE).label("recharge_due"),
    *(notification_due(line, day, USED_TODAY).label(f"{kind}_due") for kind, line, day in NOTIFICATIONS),
)
_THIS_ACCOUNT = _c.account_id == ACCOUNT
_CREDIT = _debit_update(_THIS_ACCOUNT, usage=False, returning=_MOVED)
_DEBIT = _debit_update(_THIS_ACCOUNT, WITHIN_OVERAGE_LINE, usage=False, returning=_MOVED)
_USAGE_CHECKS = (NOT_SUSPENDED, WITHIN_OVERAGE_LINE, WITHIN_BUDGET, WITHIN_REQUEST_LIMIT)
_USAGE_DEBIT = _debit_update(_THIS_ACCOUNT, *_USAGE_CHECKS, usage=True, returning=_MOVED)
# A hold passes the checks a usage debit of its amount would, and reserves it instead.
_HOLD = (
    update(CreditBalance)
    .where(_THIS_ACCOUNT, *_USAGE_CHECKS)
    .values(held_cents=_held + AMOUNT, updated_at=NOW)
    .returning(*_MOVED)
)
# A capture debits AMOUNT (at most what the hold reserved, so never past the line or the budget
# the hold was checked against) and gives back the hold's RELEASED amount: checked nothing more.
RELEASED = bindparam("released", type_=BigInteger())
_CAPTURE = _debit_update(_THIS_ACCOUNT, usage=True, returning=_MOVED, held=_held - RELEASED)
_RELEASE = (
    update(CreditBalance).where(_THIS_ACCOUNT).values(held_cents=_held - RELEASED, updated_at=NOW).returning(*_MOVED)
)

# Per-key daily budgets (api_key's columns). A key with a budget counts its usage of the UTC day
# and its open holds; one without is never written by a debit.
_k = sa_inspect(ApiKey).columns
KEY = bindparam("key", type_=_k.id.type)
KEY_USED_TODAY = case((_k.usage_day == TODAY, _k.used_today_cents), else_=literal_column("0"))
WITHIN_KEY_BUDGET = _k.daily_budget_cents >= KEY_USED_TODAY + _k.held_cents + AMOUNT


def key_budget_update(key: ColumnElement[Any], *where: ColumnElement[bool] | TextClause, hold: bool = False) -> Update:
    """The UPDATE that counts AMOUNT of usage (or a hold of it) against the key's daily budget; it
    matches no row when the key has no budget or the amount does not fit in what is left. The
    metering API's fast path compiles it too."""
    values: dict[str, Any] = (
        {"held_cents": _k.held_cents + AMOUNT}
        if hold
        else {"usage_day": TODAY, "used_today_cents": KEY_USED_TODAY + AMOUNT}
    )
    return (
        update(ApiKey)
        .where(_k.id == key, _k.daily_budget_cents.is_not(None), WITHIN_KEY_BUDGET, *where)
        .values(values)
        .returning(_k.id)
    )


_KEY_USAGE = key_budget_update(KEY)
_KEY_HOLD = key_budget_update(KEY, hold=True)
# A hold closed: its key gives back what it counted (KEY_HELD), and a capture's AMOUNT is the key's
# usage when the key has a budget now.
KEY_HELD = bindparam("key_held", type_=BigInteger())
_KEY_CLOSE = (
    update(ApiKey)
    .where(_k.id == KEY, or_(_k.daily_budget_cents.is_not(None), KEY_HELD > 0))
    .values(
        held_cents=_k.held_cents - KEY_HELD,
        usage_day=case((_k.daily_budget_cents.is_not(None), TODAY), else_=_k.usage_day),
        used_today_cents=case((_k.daily_budget_cents.is_not(None), KEY_USED_TODAY + AMOUNT), else_=_k.used_today_cents),
    )
)


def _count_on_key(session: Session, account_id: int, key_id: int, amount_cents: int, now: datetime, hold: bool = False):
    """Count a usage debit (or a hold) against the key's daily budget, in the caller's savepoint;
    KeyBudgetExceeded when it does not fit (AccountSuspended first, as the debit would say).
    Returns what was counted as held on the key (0 without a budget)."""
    parameters = {"key": key_id, "amount": amount_cents, "today": utc_day(now)}
    if session.exec(_KEY_HOLD if hold else _KEY_USAGE, params=parameters).one_or_none() is not None:
        return amount_cents if hold else 0
    budget, used, held = session.exec(
        select(_k.daily_budget_cents, KEY_USED_TODAY, _k.held_cents).where(_k.id == key_id), params=parameters
    ).one()
    if budget is None:
        return 0
    if suspended(session, account_id):
        raise AccountSuspended()
    raise KeyBudgetExceeded(
        budget_cents=budget, used_cents=used + held, retry_after_seconds=seconds_to_midnight_utc(now)
    )


def quiet_usage_debit(account: ColumnElement[Any], *where: ColumnElement[bool] | TextClause) -> Update:
    """The UPDATE of a usage debit of `account` that also leaves `after_move` nothing to start: no
    auto recharge due, no spend notification newly due. Returns the row's account_id and
    BalanceAfter's columns. The metering API's fast path compiles it per database."""
    return _debit_update(
        _c.account_id == account,
        NOT_SUSPENDED,
        WITHIN_OVERAGE_LINE,
        WITHIN_BUDGET,
        WITHIN_REQUEST_LIMIT,
        not_(recharge_due(FREE_AFTER)),
        *(not_(notification_due(line, day, USED_AFTER)) for _, line, day in NOTIFICATIONS),
        *where,
        usage=True,
        returning=(
            CreditBalance.account_id,
            CreditBalance.balance_cents,
            CreditBalance.used_today_cents,
            CreditBalance.overage_credit_line_cents,
            CreditBalance.daily_budget_cents,
            CreditBalance.held_cents,
        ),
    )


def _move_balance(session: Session, account_id: int, delta: int, now: datetime, usage: bool, unchecked: bool = False):
    """One conditional UPDATE returning `_MOVED`, or None when the row is missing, a debit would
    go below minus the overage line, or usage would go past today's budget. An unchecked debit
    (`take_back`) only needs the row."""
    statement = _USAGE_DEBIT if usage else _DEBIT if delta < 0 and not unchecked else _CREDIT
    parameters = {"amount": -delta, "today": utc_day(now), "now": now, "account": account_id}
    return session.exec(statement, params=parameters).one_or_none()


def after_move(session: Session, account_id: int, row, now: datetime) -> BalanceAfter:
    """After a debit, in its transaction: start the auto recharge when the balance is at or
    below its threshold, and each spend notification whose line today's usage has reached, each
    at most once (conditional UPDATEs on the metering row decide the single winner). `row` is
    what `_move_balance` returned."""
    today = utc_day(now)
    if row.recharge_due:
        start_recharge_if_due(session, account_id)
    for kind, line, day in NOTIFICATIONS:
        if getattr(row, f"{kind}_due"):
            _notify_once(session, account_id, kind, day, today, row.used_today, getattr(row, line.key))
    return BalanceAfter(
        row.balance_cents, row.used_today, row.overage_credit_line_cents, row.daily_budget_cents, row.held_cents
    )


def start_recharge_if_due(session: Session, account_id: int) -> bool:
    """Mark one recharge in flight when the balance is at or below the armed threshold and none
    is, and enqueue it (job "auto_recharge", payload account_id and seq). True if it started."""
    started = session.exec(
        update(CreditBalance)
        .where(col(CreditBalance.account_id) == account_id, recharge_due(FREE))
        .values(recharge_in_flight=True, recharge_seq=col(CreditBalance.recharge_seq) + 1)
        .returning(col(CreditBalance.recharge_seq))
    ).one_or_none()
    if started is None:
        return False
    seq = started[0]
    enqueue(
        session,
        "auto_recharge",
        {"account_id": account_id, "seq": seq},
        dedupe_key=f"auto_recharge:{account_id}:{seq}",
    )
    return True


def _notify_once(
    session: Session, account_id: int, kind: str, column: ColumnElement[Any], today: date, used: int, line: int
) -> None:
    won = session.exec(
        update(CreditBalance)
        .where(col(CreditBalance.account_id) == account_id, column.is_distinct_from(today))
        .values({column.key: today})
        .returning(col(CreditBalance.account_id))
    ).one_or_none()
    if won is not None:
        enqueue(
            session,
            "spend_notification",
            {"account_id": account_id, "kind": kind, "day": today.isoformat(), "used_cents": used, "line_cents": line},
            dedupe_key=f"spend:{account_id}:{kind}:{today.isoformat()}",
        )


def _refusal(session: Session, account_id: int, amount_cents: int, now: datetime) -> DomainError:
    """Why a usage debit's UPDATE matched no row: a suspension, the plan's daily requests, then
    the daily budget, then the balance."""
    if suspended(session, account_id):
        return AccountSuspended()
    this_row, parameters = col(CreditBalance.account_id) == account_id, {"today": utc_day(now), "amount": amount_cents}
    within_requests, request_limit = session.exec(
        select(WITHIN_REQUEST_LIMIT, DAILY_REQUEST_LIMIT).where(this_row), params=parameters
    ).one()
    within_budget, budget, used_today, held = session.exec(
        select(WITHIN_BUDGET, _budget, USED_TODAY, _held).where(this_row), params=parameters
    ).one()
    retry_after_seconds = seconds_to_midnight_utc(now)
    if not within_requests:
        account = session.get(Account, account_id)
        plan_name = get_plan(account.plan_code).name if account is not None else ""
        return DailyRequestLimitExceeded(
            plan_name=plan_name, limit=request_limit, retry_after_seconds=retry_after_seconds
        )
    if not within_budget:
        return DailyBudgetExceeded(
            budget_cents=budget, used_today_cents=used_today, retry_after_seconds=retry_after_seconds, held_cents=held
        )
    return InsufficientCredits("Not enough usage credits.")


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _replay(session: Session, account_id: int, idempotency_key: str) -> LedgerEntry | None:
    return session.exec(
        select(LedgerEntry).where(LedgerEntry.account_id == account_id, LedgerEntry.idempotency_key == idempotency_key)
    ).first()


# Holds (app/services/holds.py answers the API): credits reserved on the metering row
# (`held_cents`) and on the key when it has a budget, by the same checks as a usage debit.


def place_hold(
    session: Session,
    *,
    account_id: int,
    amount_cents: int,
    expires_at: datetime,
    description: str = "",
    api_key_id: int | None = None,
    now: datetime | None = None,
) -> tuple[CreditHold, BalanceAfter]:
    """Reserve `amount_cents` until `expires_at`, refused as a usage debit of that amount would be
    (AccountSuspended, DailyRequestLimitExceeded, DailyBudgetExceeded, KeyBudgetExceeded,
    InsufficientCredits). Job "hold_expiry", due at `expires_at`, expires it if still open."""
    amount_cents = _positive(amount_cents)
    now = now or utcnow()
    live.mark(session, account_id)
    parameters = {"amount": amount_cents, "today": utc_day(now), "now": now, "account": account_id}
    with session.begin_nested():
        key_held = _count_on_key(session, account_id, api_key_id, amount_cents, now, hold=True) if api_key_id else 0
        row = session.exec(_HOLD, params=parameters).one_or_none()
        if row is None and session.get(CreditBalance, account_id) is None:
            ensure_credit_balance(session, account_id)
            row = session.exec(_HOLD, params=parameters).one_or_none()
        if row is None:
            raise _refusal(session, account_id, amount_cents, now)
        hold = CreditHold(
            account_id=account_id,
            api_key_id=api_key_id,
            amount_cents=amount_cents,
            key_held_cents=key_held,
            description=description[:500],
            expires_at=expires_at,
            created_at=now,
        )
        session.add(hold)
        session.flush()
    enqueue(
        session,
        "hold_expiry",
        {"account_id": hold.account_id, "hold_id": hold.id},
        dedupe_key=f"hold_expiry:{hold.id}",
        run_at=expires_at,
    )
    return hold, after_move(session, account_id, row, now)


@dataclass(frozen=True)
class ClosedHold:
    hold: CreditHold
    entry: LedgerEntry | None
    after: BalanceAfter


def close_hold(
    session: Session,
    account_id: int,
    hold_id: int,
    status: str,
    *,
    captured_cents: int = 0,
    description: str = "",
    now: datetime | None = None,
) -> ClosedHold | None:
    """Capture ("captured", debiting `captured_cents` as one usage entry), release ("released")
    or expire ("expired") an open hold, giving back what it reserved. A capture or release needs
    the hold not expired yet, an expiry needs it expired: one conditional UPDATE from "open", so
    of a capture, a release and the expiry racing exactly one wins. None when the hold was not
    open (or not in the state this needs). Locks the hold, then its key, then the metering row:
    the order every debit keeps (key, then metering row), so they never deadlock."""
    now = now or utcnow()
    table = sa_inspect(CreditHold).columns
    in_time = table.expires_at <= now if status == "expired" else table.expires_at > now
    closed = session.exec(
        update(CreditHold)
        .where(table.account_id == account_id, table.id == hold_id, table.status == "open", in_time)
        .values(status=status, captured_cents=captured_cents, closed_at=now)
        .returning(table.id)
    ).one_or_none()
    if closed is None:
        return None
    hold = session.get(CreditHold, (account_id, hold_id), populate_existing=True)
    assert hold is not None
    live.mark(session, account_id)
    parameters = {
        "amount": captured_cents,
        "released": hold.amount_cents,
        "today": utc_day(now),
        "now": now,
        "account": account_id,
    }
    if hold.api_key_id is not None:
        session.exec(_KEY_CLOSE, params={**parameters, "key": hold.api_key_id, "key_held": hold.key_held_cents})
    row = session.exec(_CAPTURE if captured_cents else _RELEASE, params=parameters).one()
    entry = None
    if captured_cents:
        entry = LedgerEntry(
            account_id=account_id,
            amount_cents=-captured_cents,
            balance_after_cents=row.balance_cents,
            source="usage",
            description=description[:500],
            idempotency_key=f"hold:{hold.public_id}",
            created_at=now,
            api_key_id=hold.api_key_id,
        )
        session.add(entry)
        session.flush()
        hold.ledger_entry_id = entry.id
        session.add(hold)
        session.flush()
    return ClosedHold(hold, entry, after_move(session, account_id, row, now))


def held_now(session: Session, account_id: int, now: datetime) -> int:
    """What the account's open holds reserve, without those already expired that the job has not
    released yet (what pages and the API's balance show)."""
    table = sa_inspect(CreditHold).columns
    held = session.exec(
        select(func.coalesce(func.sum(table.amount_cents), 0)).where(
            table.account_id == account_id, table.status == "open", table.expires_at > now
        )
    ).one()
    return int(held)  # PostgreSQL sums BIGINT as NUMERIC
