"""What operator staff and operator API keys see of customer accounts and do to them. Every
change needs a reason and is written to the account's own audit log in the same transaction,
under the operator's name (or the key's), so the customer's Audit Log shows who did what and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import exists, func, or_
from sqlmodel import Session, col, select

from app.errors import Conflict, NotFound, ValidationFailed
from app.models import (
    Account,
    ApiKey,
    AuditEvent,
    CreditBalance,
    Invoice,
    LedgerEntry,
    Payment,
    Role,
    User,
    utcnow,
)
from app.payments import gateway
from app.services import audit, auth, grants, ledger, refunds
from app.services.accounts import builtin_role, create_account, create_user, ensure_builtin_roles, normalize_email
from app.services.credentials import SignInOutcome
from app.services.money import format_usd
from app.services.operator import staff
from app.services.operator.staff import Author, Operator, author_of
from app.services.overview import billing_settings, overview
from app.services.plans import PLANS, get_plan
from app.services.timefmt import format_datetime

PAGE_SIZE = 25
RECENT = 20
REASON_MAX_LENGTH = 300
MAX_GRANT_CENTS = 100_000_000  # $1,000,000 in one grant


@dataclass(frozen=True)
class AccountRow:
    """One account in the back office's list."""

    id: str
    name: str
    plan: str
    status: str
    balance: str
    used_today: str
    last_api_call: str
    created: str
    # The same figures as numbers, for the operator API.
    plan_code: str
    suspended: bool
    balance_cents: int
    used_today_cents: int
    last_api_call_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class AccountPage:
    rows: list[AccountRow]
    # Pass as `before_id` for the next page; None on the last page.
    next_before_id: int | None


def account_by_public_id(session: Session, public_id: str) -> Account:
    account = session.exec(select(Account).where(Account.public_id == public_id)).first()
    if account is None:
        raise NotFound("No such account.")
    return account


def _status(account: Account, past_due: bool) -> str:
    if account.suspended_at is not None:
        return "suspended"
    return "past due" if past_due else "active"


def _past_due_clause(now: datetime):
    """SQL for "has an open invoice whose charge failed or whose due date (a UTC day) passed"."""
    midnight = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    return exists().where(
        col(Invoice.account_id) == col(Account.id),
        col(Invoice.status) == "open",
        col(Invoice.kind) == "invoice",
        or_(col(Invoice.failed_collections) > 0, col(Invoice.due_at) < midnight),
    )


def list_accounts(
    session: Session,
    *,
    search: str = "",
    plan: str = "",
    past_due: bool = False,
    suspended: bool = False,
    below_zero: bool = False,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
    now: datetime | None = None,
) -> AccountPage:
    """Accounts newest first in keyset pages; `search` matches a name, domain or a user's email
    (contained, any case) or an account id (exactly)."""
    now = now or utcnow()
    if plan and plan not in PLANS:
        raise ValidationFailed("Choose a plan from the list.", field="plan")
    query, is_past_due = _row_query(now)
    text = search.strip()
    if text:
        like = f"%{text.lower()}%"
        query = query.where(
            or_(
                func.lower(Account.name).like(like),
                func.lower(Account.domain).like(like),
                col(Account.public_id) == text,
                exists().where(col(User.account_id) == col(Account.id), col(User.email).like(like)),
            )
        )
    if plan:
        query = query.where(Account.plan_code == plan)
    if past_due:
        query = query.where(is_past_due)
    if suspended:
        query = query.where(col(Account.suspended_at).is_not(None))
    if below_zero:
        query = query.where(col(CreditBalance.balance_cents) < 0)
    if before_id is not None:
        query = query.where(col(Account.id) < before_id)
    found = session.exec(query.order_by(col(Account.id).desc()).limit(limit + 1)).all()
    rows = [_row(account, balance, last_used, overdue, now) for account, balance, last_used, overdue in found[:limit]]
    next_id = found[limit - 1][0].id if len(found) > limit else None
    return AccountPage(rows, next_id)


def account_row(session: Session, public_id: str, *, now: datetime | None = None) -> AccountRow:
    """One account as the list shows it."""
    now = now or utcnow()
    query, _ = _row_query(now)
    found = session.exec(query.where(Account.public_id == public_id)).first()
    if found is None:
        raise NotFound("No such account.")
    account, balance, last_used, overdue = found
    return _row(account, balance, last_used, overdue, now)


def _row_query(now: datetime):
    last_call = select(func.max(ApiKey.last_used_at)).where(col(ApiKey.account_id) == col(Account.id)).scalar_subquery()
    is_past_due = _past_due_clause(now)
    query = select(Account, CreditBalance, last_call, is_past_due).outerjoin(
        CreditBalance, col(CreditBalance.account_id) == col(Account.id)
    )
    return query, is_past_due


def _row(
    account: Account, balance: CreditBalance | None, last_used: datetime | None, overdue: bool, now: datetime
) -> AccountRow:
    cents = balance.balance_cents if balance else 0
    used = balance.used_today_cents if balance and balance.usage_day == ledger.utc_day(now) else 0
    return AccountRow(
        id=account.public_id,
        name=account.name,
        plan=get_plan(account.plan_code).name,
        status=_status(account, bool(overdue)),
        balance=format_usd(cents),
        used_today=format_usd(used),
        last_api_call=format_datetime(last_used, "UTC") if last_used else "Never",
        created=format_datetime(account.created_at, "UTC"),
        plan_code=account.plan_code,
        suspended=account.suspended_at is not None,
        balance_cents=cents,
        used_today_cents=used,
        last_api_call_at=last_used,
        created_at=account.created_at,
    )


@dataclass(frozen=True)
class Line:
    """A row of one of the detail page's tables: its cells, left to right."""

    id: str
    cells: list[str]


@dataclass(frozen=True)
class AccountDetail:
    id: str
    name: str
    domain: str
    plan_code: str
    plan: str
    custom_pricing: bool
    status: str
    suspended: bool
    created: str
    # The Overview's figures, as it shows them.
    figures: list[tuple[str, str]]
    overage_line_cents: int
    users: list[Line]
    payments: list[Line]
    invoices: list[Line]
    ledger: list[Line]
    audit: list[Line]
    # Top-ups that can still be refunded: (payment id, what the choice says).
    refundable: list[Line]


def account_detail(session: Session, public_id: str, *, now: datetime | None = None) -> AccountDetail:
    now = now or utcnow()
    account = account_by_public_id(session, public_id)
    assert account.id is not None  # a stored account
    figures = overview(session, account.id, now)
    zone_name = account.timezone
    overdue = session.exec(select(_past_due_clause(now))).one()
    users = session.exec(
        select(User, Role).join(Role, col(Role.id) == User.role_id).where(User.account_id == account.id)
    ).all()
    payments = session.exec(
        select(Payment).where(Payment.account_id == account.id).order_by(col(Payment.id).desc()).limit(RECENT)
    ).all()
    invoices = session.exec(
        select(Invoice).where(Invoice.account_id == account.id).order_by(col(Invoice.id).desc()).limit(RECENT)
    ).all()
    entries = session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.account_id == account.id)
        .order_by(col(LedgerEntry.id).desc())
        .limit(RECENT)
    ).all()
    events = session.exec(
        select(AuditEvent).where(AuditEvent.account_id == account.id).order_by(col(AuditEvent.id).desc()).limit(RECENT)
    ).all()

    def when(moment: datetime | None) -> str:
        return format_datetime(moment, zone_name) if moment else ""

    return AccountDetail(
        id=account.public_id,
        name=account.name,
        domain=account.domain,
        plan_code=account.plan_code,
        plan=get_plan(account.plan_code).name,
        custom_pricing=billing_settings(session, account.id).invoice_priced,
        status=_status(account, bool(overdue)),
        suspended=account.suspended_at is not None,
        created=when(account.created_at),
        figures=[
            ("Total Credits", format_usd(figures.total_credits)),
            ("Usage Invoiced in Earlier Periods", format_usd(figures.earlier_usage)),
            ("Usage This Period", format_usd(figures.usage_this_period)),
            ("Remaining Credits", format_usd(figures.remaining_credits)),
            ("Overage Protection", format_usd(figures.overage_protection)),
            ("Used Today", format_usd(figures.used_today)),
            ("Held for Calls in Progress", format_usd(figures.held)),
            ("Available to Use", format_usd(figures.available_to_use)),
        ],
        overage_line_cents=figures.overage_protection,
        users=[Line(u.public_id, [u.full_name or "—", u.email, r.name, u.status]) for u, r in users],
        payments=[
            Line(p.public_id, [when(p.created_at), p.method, format_usd(p.amount_cents), p.status]) for p in payments
        ],
        invoices=[
            Line(i.public_id, [when(i.issued_at), i.kind, format_usd(i.total_cents), i.status]) for i in invoices
        ],
        ledger=[
            Line(e.public_id, [when(e.created_at), e.source, format_usd(e.amount_cents), e.description])
            for e in entries
        ],
        audit=[Line(str(e.id), [when(e.created_at), e.actor_name, audit.with_currency(e.summary)]) for e in events],
        refundable=[
            Line(
                p.public_id,
                [f"{when(p.created_at)}: {format_usd(p.amount_cents - p.refunded_cents)} left of {p.public_id}"],
            )
            for p in payments
            if p.method in REFUNDABLE_METHODS and p.status in REFUNDABLE_STATUSES and p.stripe_payment_intent_id
        ],
    )


def _reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationFailed("Give a reason: it is recorded in the account's audit log.", field="reason")
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationFailed(f"Use at most {REASON_MAX_LENGTH} characters.", field="reason")
    return reason


def _record(session: Session, by: Author, account: Account, action: str, summary: str, reason: str) -> None:
    assert account.id is not None  # a stored account
    session.add(
        AuditEvent(
            account_id=account.id,
            actor_name=by.name,
            actor_email=by.email,
            action=f"operator.{action}",
            summary=f"{summary} Reason: {reason}"[:500],
        )
    )
    session.flush()


def grant_credits(
    session: Session,
    by: Author,
    public_id: str,
    *,
    amount_cents: int,
    reason: str,
    request_key: str,
    expires_at: datetime | None = None,
    priority: int | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Credits given (a positive amount) or taken (a negative one, at most down to minus the
    overage line) as one `adjustment` ledger entry. Given credits are a credit grant
    (app.services.grants): drawn before purchased credits, soonest `expires_at` first, then
    highest `priority`; what is left at `expires_at` expires. Idempotent by `request_key`: the
    same key again returns the first entry and moves nothing; with another amount it is refused."""
    reason = _reason(reason)
    account = account_by_public_id(session, public_id)
    assert account.id is not None  # a stored account
    if type(amount_cents) is not int or amount_cents == 0 or abs(amount_cents) > MAX_GRANT_CENTS:
        raise ValidationFailed(
            f"The amount must be a whole number of cents, not zero, at most {format_usd(MAX_GRANT_CENTS)} either way.",
            field="amount",
        )
    if not request_key or len(request_key) > 150:
        raise ValidationFailed("A request key of 1 to 150 characters is required.")
    key = f"operator:{account.id}:{request_key}"
    earlier = session.exec(
        select(LedgerEntry).where(LedgerEntry.account_id == account.id, LedgerEntry.idempotency_key == key)
    ).first()
    if earlier is not None:
        if earlier.amount_cents != amount_cents:
            raise Conflict("This request key was already used for another amount.")
        return earlier
    now = now or utcnow()
    if amount_cents < 0 and expires_at is not None:
        raise ValidationFailed("Only granted credits expire: leave the expiry empty to take back.", field="expires_at")
    if amount_cents < 0 and priority is not None:
        raise ValidationFailed("Only granted credits have a priority: leave it empty to take back.", field="priority")
    priority = grants.validate(expires_at, priority, now)
    description = f"Adjustment by {by.name}: {reason}"
    if amount_cents > 0:
        entry = ledger.credit(
            session,
            account_id=account.id,
            amount_cents=amount_cents,
            source="adjustment",
            description=description,
            idempotency_key=key,
            now=now,
        )
        grants.record_grant(session, entry, expires_at=expires_at, priority=priority)
        summary = f"Granted {format_usd(amount_cents)} of usage credits{_expiring(expires_at, account.timezone)}."
    else:
        entry = ledger.debit(
            session,
            account_id=account.id,
            amount_cents=-amount_cents,
            source="adjustment",
            description=description,
            idempotency_key=key,
        )
        summary = f"Took {format_usd(-amount_cents)} of usage credits back."
    _record(session, by, account, "credits", summary, reason)
    return entry


def grant_form(
    session: Session,
    by: Author,
    public_id: str,
    *,
    amount_cents: int,
    reason: str,
    request_key: str,
    expires_on: str = "",
    priority: str = "",
) -> LedgerEntry:
    """`grant_credits` from the back office's form: the last day the credits may be used (in the
    account's timezone, empty for never) and the priority as typed."""
    account = account_by_public_id(session, public_id)
    return grant_credits(
        session,
        by,
        public_id,
        amount_cents=amount_cents,
        reason=reason,
        request_key=request_key,
        expires_at=grants.expiry_of_day(expires_on, account.timezone),
        priority=grants.priority_of(priority),
    )


def _expiring(expires_at: datetime | None, timezone: str) -> str:
    return f", expiring {format_datetime(expires_at, timezone)}" if expires_at is not None else ""


def set_plan(
    session: Session, by: Author, public_id: str, *, plan_code: str, custom_pricing: bool, reason: str
) -> Account:
    """Move the account to a plan without charging or crediting anything (the next renewal bills
    it), with the plan's overage protection line; custom pricing bills it by invoice."""
    reason = _reason(reason)
    plan = PLANS.get(plan_code)
    if plan is None:
        raise ValidationFailed("Choose a plan from the list.", field="plan")
    account = account_by_public_id(session, public_id)
    assert account.id is not None  # a stored account
    before, settings = get_plan(account.plan_code).name, billing_settings(session, account.id)
    account.plan_code, account.plan_status = plan.code, "active"
    settings.invoice_priced = custom_pricing
    session.add_all([account, settings])
    ledger.set_overage_credit_line(session, account.id, plan.overage_credit_line_cents)
    pricing = "custom pricing (invoiced)" if custom_pricing else "standard pricing"
    _record(session, by, account, "plan", f"Changed the plan from {before} to {plan.name}, {pricing}.", reason)
    return account


def set_overage_line(session: Session, by: Author, public_id: str, *, cents: int, reason: str) -> None:
    reason = _reason(reason)
    if type(cents) is not int or not 0 <= cents <= MAX_GRANT_CENTS:
        raise ValidationFailed("Enter an amount from $0.00 to $1,000,000.00.", field="amount")
    account = account_by_public_id(session, public_id)
    assert account.id is not None  # a stored account
    ledger.set_overage_credit_line(session, account.id, cents)
    _record(session, by, account, "overage", f"Set the overage protection line to {format_usd(cents)}.", reason)


def set_suspended(
    session: Session, by: Author, public_id: str, *, suspended: bool, reason: str, now: datetime | None = None
) -> Account:
    """Suspend (metering calls refused with 403 account_suspended, the console read-only) or
    reactivate. Doing what is already done changes nothing and records nothing."""
    reason = _reason(reason)
    account = account_by_public_id(session, public_id)
    if (account.suspended_at is not None) == suspended:
        return account
    account.suspended_at = (now or utcnow()) if suspended else None
    session.add(account)
    _record(
        session,
        by,
        account,
        "suspend" if suspended else "reactivate",
        "Suspended the account." if suspended else "Reactivated the account.",
        reason,
    )
    return account


def resend_invitation(
    session: Session, by: Author, public_id: str, *, user_public_id: str, reason: str, base_url: str
) -> str:
    """A new invitation link for one of the account's invited users (earlier links keep working
    until they expire, as the Team page's resend does). Returns the link."""
    reason = _reason(reason)
    account = account_by_public_id(session, public_id)
    user = session.exec(
        select(User).where(User.public_id == user_public_id, User.account_id == account.id, User.status == "invited")
    ).first()
    if user is None:
        raise NotFound("No such invitation in this account.")
    link = auth.issue_invitation(session, user, base_url=base_url)
    _record(session, by, account, "invite", f"Sent the invitation to {user.email} again.", reason)
    return link


# Top-ups (a card purchase, an auto recharge) are what an operator refunds here; the credits they
# bought are taken back by the refund rules (`refunds.charge_refunded`).
REFUNDABLE_METHODS = ("card", "auto_recharge")
REFUNDABLE_STATUSES = ("succeeded", "partially_refunded")


def refund_topup(
    session: Session,
    by: Author,
    public_id: str,
    *,
    payment_public_id: str,
    amount_cents: int,
    reason: str,
    request_key: str,
) -> Payment:
    """Refund (part of) a top-up through Stripe and take its credits back from the ledger, as
    Stripe's charge.refunded webhook would (which then finds it done). Stripe's idempotency key
    is built from the request key, so Stripe answers a repeated click with the first refund."""
    reason = _reason(reason)
    account = account_by_public_id(session, public_id)
    payment = session.exec(
        select(Payment)
        .where(Payment.public_id == payment_public_id, Payment.account_id == account.id)
        .with_for_update()
    ).first()
    if payment is None or payment.method not in REFUNDABLE_METHODS or not payment.stripe_payment_intent_id:
        raise NotFound("No such top-up in this account.", field="payment")
    if payment.status not in REFUNDABLE_STATUSES:
        raise ValidationFailed(
            "Only a top-up that went through, not refunded in full, can be refunded.", field="payment"
        )
    left = payment.amount_cents - payment.refunded_cents
    if type(amount_cents) is not int or not 0 < amount_cents <= left:
        raise ValidationFailed(f"Refund from $0.01 to {format_usd(left)}.", field="refund_amount")
    refunded = gateway.refund_payment_intent(
        payment.stripe_payment_intent_id,
        amount_cents,
        idempotency_key=f"operator-refund:{payment.public_id}:{request_key}",
    )
    before = payment.refunded_cents
    # Stripe's running total, as its charge.refunded event carries it: the event, when it comes,
    # finds the credits taken back already and moves nothing.
    refunds.charge_refunded(
        session, payment, charge_id=refunded.charge_id, refunded_cents=refunded.charge_refunded_cents
    )
    if payment.refunded_cents == before:
        return payment  # Stripe answered a repeated request with the first refund
    _record(
        session,
        by,
        account,
        "refund",
        f"Refunded {format_usd(amount_cents)} of the top-up {payment.public_id} through Stripe.",
        reason,
    )
    return payment


def view_as(
    session: Session, operator: Operator, public_id: str, *, reason: str, now: datetime | None = None
) -> SignInOutcome:
    """Start "View as": the code the operator's browser trades for a read-only session of the
    account's own console (`staff.start_viewing`), recorded in the account's audit log."""
    reason = _reason(reason)
    account = account_by_public_id(session, public_id)
    assert account.id is not None  # a stored account
    _record(
        session,
        author_of(operator),
        account,
        "view_as",
        "Started viewing the console as the customer sees it (read-only).",
        reason,
    )
    return staff.view_as_code(session, operator, account.id, now=now or utcnow())


def stop_viewing(session: Session, token: str, *, now: datetime | None = None) -> str | None:
    """End a "View as" session (recorded in the account's audit log); the public id of the
    account it viewed, None when the token is no live one."""
    now = now or utcnow()
    live = staff.viewing(session, token, now=now)
    if live is None:
        return None
    view, user = live
    account = session.get_one(Account, view.viewing_account_id)
    assert account.id is not None  # a stored account
    staff.VIEWERS.end(session, token, now)
    assert user.id is not None  # a stored operator
    by = author_of(Operator(operator_id=user.id, email=user.email, full_name=user.full_name))
    session.add(
        AuditEvent(
            account_id=account.id,
            actor_name=by.name,
            actor_email=by.email,
            action="operator.view_as_end",
            summary="Stopped viewing the console as the customer sees it.",
        )
    )
    return account.public_id


@dataclass(frozen=True)
class NewAccount:
    account: Account
    owner_email: str
    invitation_link: str


def open_account(
    session: Session,
    by: Author,
    *,
    name: str,
    owner_email: str,
    owner_name: str = "",
    plan_code: str = "basic",
    timezone: str = "UTC",
    base_url: str,
) -> NewAccount:
    """A new account whose one user, its Owner, is invited (the link is emailed and returned)."""
    if plan_code not in PLANS:
        raise ValidationFailed("Choose a plan from the list.", field="plan")
    email = normalize_email(owner_email)
    if "@" not in email:
        raise ValidationFailed("Enter the owner's email address.", field="owner_email")
    ensure_builtin_roles(session)
    account = create_account(session, name=name, timezone=timezone)
    account.plan_code = plan_code
    session.add(account)
    owner = create_user(
        session,
        account=account,
        email=email,
        full_name=owner_name,
        role=builtin_role(session, "owner"),
        password=None,
        status="invited",
    )
    link = auth.issue_invitation(session, owner, base_url=base_url)
    _record(session, by, account, "create", f"Opened the account with {email} invited as its Owner.", "new customer")
    return NewAccount(account, email, link)
