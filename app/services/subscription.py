"""Plans and seats (seeds 000, 001): the plan catalogue, the current subscription, and changing
the plan or the number of seats.

Billing periods are calendar months in UTC: the periods for which the invoices' period close
bills each paid plan in advance (seat price × seats, `invoices.close_period`). A change takes
effect at once and is settled for the rest of the current period, prorated by days:

    amount = (new monthly total − old monthly total) × days left ÷ days in the period

A monthly total is the seat price × seats. The days left count the UTC day of the change, so a
change on the 1st settles the whole month and one on the last day a single day. The amount is
rounded towards zero to whole cents: a charge or a credit is never more than the exact share,
and a change and its reverse on the same day cancel out to the cent.

- A positive amount (an upgrade, more seats) is charged to the default card at once. The change
  applies when the payment succeeds (after 3-D Secure if the card asks for it), with an invoice
  (`invoices.issue_for_plan_change`) marked paid by that payment. A declined card changes nothing.
- A negative amount (a downgrade, fewer seats) is credited to the usage-credit balance at once:
  a ledger entry with source "plan_change", listed in Balance History. Removing seats is
  credited the same way as a downgrade, prorated; nothing is refunded to the card.
- Cancelling a paid plan is a downgrade to Basic.

The rules:
- only holders of plan.manage see or change the subscription;
- a paid plan needs a card on file (the default card), else `CardRequired`, whose page sends the
  user to Payment Methods;
- the seats never go below those in use (active users and pending invitations) nor below the
  plan's included seats; Basic's seats are fixed. A plan change keeps the seats the account
  has (at least the new plan's included seats); a downgrade to Basic needs at most Basic's seats
  in use;
- custom-priced (invoice-priced) accounts are not self-serve: they see their plan and that they
  are invoiced, and contact sales; Custom is arranged with sales too;
- each change is confirmed with a request key: the PlanChange row is written before Stripe is
  called, so a replayed confirmation returns the first outcome and charges or credits nothing
  more. A change waiting for 3-D Secure is cancelled at Stripe (or found to have succeeded) when
  another change starts.

Callers commit."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.errors import Conflict, ValidationFailed
from app.models import Account, Payment, PlanChange, User, utcnow
from app.services import audit, invoices, ledger, payment_methods, payments
from app.services.customers import account_id_of, account_of
from app.services.info import format_bytes
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require
from app.services.plans import LIMITS, PLANS, Plan, get_plan
from app.services.roles import lock_account
from app.services.team import SEAT_STATUSES, seat_limit
from app.services.timefmt import format_date, zone

log = logging.getLogger("ledgerdesk.subscription")

MAX_SEATS = 1_000
SALES_EMAIL = "sales@ledgerdesk.local"
PAYMENT_METHODS_PATH = "/billing/payment-methods"
CARD_REQUIRED_MESSAGE = "A paid plan needs a card on file. Add a card on the Payment Methods page, then come back here."
CUSTOM_PRICED_MESSAGE = (
    f"Your account has custom pricing and is billed by invoice. To change your plan or seats, contact {SALES_EMAIL}."
)
CATALOGUE = tuple(PLANS.values())


class CardRequired(Conflict):
    """A paid plan needs a card on file: the page sends the user to Payment Methods."""

    code = "card_required"


class QuoteChanged(Conflict):
    """The amount is no longer the one the user confirmed (a new day began, or another change
    was made meanwhile): nothing happened, the page shows the new amounts."""

    code = "quote_changed"


# Proration


@dataclass(frozen=True)
class Proration:
    # The billing period: its first day and the next period's first day (the renewal).
    period_start: date
    period_end: date
    # Days from the day of the change through the period's last day, both included.
    days_left: int
    # Signed: > 0 to charge, < 0 to credit.
    amount_cents: int

    @property
    def days_total(self) -> int:
        return (self.period_end - self.period_start).days


def billing_period(moment: datetime) -> tuple[date, date]:
    """The calendar month in UTC that `moment` is in: its first day and the next month's."""
    return moment.astimezone(UTC).date().replace(day=1), invoices.period_end_after(moment)


def prorate(old_monthly_cents: int, new_monthly_cents: int, moment: datetime) -> Proration:
    """The part of the change in the monthly total that falls on the rest of `moment`'s period:
    difference × days left ÷ days in the period, rounded towards zero to whole cents."""
    start, end = billing_period(moment)
    days_left = (end - moment.astimezone(UTC).date()).days
    difference = new_monthly_cents - old_monthly_cents
    share = abs(difference) * days_left // (end - start).days
    return Proration(start, end, days_left, share if difference >= 0 else -share)


# What the Plans page shows


@dataclass(frozen=True)
class PlanCard:
    code: str
    name: str
    price: str
    seats: str
    features: tuple[str, ...]
    limits: tuple[str, ...]
    # current | upgrade | downgrade | contact (sales) | none (not self-serve)
    action: str


@dataclass(frozen=True)
class Subscription:
    plan_code: str
    plan_name: str
    status: str
    custom_priced: bool
    # The seats the account has; None when the plan does not limit them.
    seats: int | None
    seats_used: int
    included_seats: int
    seat_price_cents: int
    monthly_cents: int
    # When the paid plan renews, in the account's timezone; "" when it costs nothing.
    renews_on: str
    # The card a change is charged to ("" when none is on file).
    card: str
    plans: tuple[PlanCard, ...]

    @property
    def can_change_seats(self) -> bool:
        return not self.custom_priced and get_plan(self.plan_code).paid

    @property
    def monthly_text(self) -> str:
        """ "$29.00 × 5 seats = $145.00 per month"."""
        if self.seats is None:
            return "As agreed in your contract, billed by invoice"
        return f"{format_usd(self.seat_price_cents)} × {_seats_text(self.seats)} = {format_usd(self.monthly_cents)} per month"


@dataclass(frozen=True)
class Quote:
    """A change as the confirmation shows it, before it happens."""

    kind: str  # plan | seats
    from_plan: Plan
    to_plan: Plan
    from_seats: int
    to_seats: int
    proration: Proration
    # The card that is charged, for a positive amount.
    card: str
    renews_on: str

    @property
    def amount_cents(self) -> int:
        return self.proration.amount_cents

    @property
    def old_monthly_cents(self) -> int:
        return self.from_plan.monthly_cents(self.from_seats)

    @property
    def new_monthly_cents(self) -> int:
        return self.to_plan.monthly_cents(self.to_seats)

    @property
    def title(self) -> str:
        if self.kind == "seats":
            return "Change seats"
        upgrade = CATALOGUE.index(self.to_plan) > CATALOGUE.index(self.from_plan)
        return f"{'Upgrade' if upgrade else 'Downgrade'} to {self.to_plan.name}"

    @property
    def lines(self) -> tuple[str, ...]:
        """The amounts, in sentences."""
        days = f"the {self.proration.days_left} of {self.proration.days_total} days left in this billing period"
        amount = format_usd(abs(self.amount_cents))
        if self.amount_cents > 0:
            settle = f"Charged now to {self.card}: {amount}, the difference for {days}."
        elif self.amount_cents < 0:
            settle = f"Credited to your balance now: {amount}, the difference for {days}."
        else:
            settle = "Nothing is charged or credited now."
        after = (
            f"From {self.renews_on}, you pay {format_usd(self.new_monthly_cents)} per month."
            if self.to_plan.paid
            else "From then on, you pay nothing for your plan."
        )
        return (
            f"Now: {_monthly(self.from_plan, self.from_seats)}.",
            f"After the change: {_monthly(self.to_plan, self.to_seats)}.",
            settle,
            after,
        )


@dataclass(frozen=True)
class ChangeResult:
    """status: applied | requires_action | processing | failed. With requires_action the page
    passes client_secret to Stripe.js confirmCardPayment, then confirms again with the same
    request key, which brings the change up to date."""

    status: str
    change_id: str
    amount_cents: int
    plan_name: str
    seats: int
    payment_intent_id: str = ""
    client_secret: str = ""
    message: str = ""


def _seats_text(seats: int) -> str:
    return f"{seats} seat" if seats == 1 else f"{seats} seats"


def _monthly(plan: Plan, seats: int) -> str:
    if not plan.paid:
        return f"{plan.name}, {_seats_text(seats)}, free"
    return (
        f"{plan.name}, {format_usd(plan.seat_price_cents)} × {_seats_text(seats)} = "
        f"{format_usd(plan.monthly_cents(seats))} per month"
    )


def _limit_texts(plan: Plan) -> tuple[str, ...]:
    texts = []
    for limit in LIMITS:
        value = plan.limit(limit.key)
        if limit.key == "seats" or value is None:
            continue
        shown = (
            format_usd(value)
            if limit.unit == "cents"
            else format_bytes(value)
            if limit.unit == "bytes"
            else f"{value:,}"
        )
        texts.append(f"{limit.label}: {shown}")
    return tuple(texts)


def _plan_card(plan: Plan, current: Plan, custom_priced: bool) -> PlanCard:
    if plan.code == current.code:
        action = "current"
    elif plan.invoice_priced or custom_priced:
        action = "contact" if plan.invoice_priced else "none"
    else:
        action = "upgrade" if CATALOGUE.index(plan) > CATALOGUE.index(current) else "downgrade"
    if plan.invoice_priced:
        price, seats = "Custom pricing, billed by invoice", "Seats as agreed"
    else:
        price = f"{format_usd(plan.seat_price_cents)} per seat / month" if plan.paid else "Free"
        seats = f"Includes {_seats_text(plan.included_seats)}"
    return PlanCard(plan.code, plan.name, price, seats, plan.features, _limit_texts(plan), action)


def overview(session: Session, actor: Actor, now: datetime | None = None) -> Subscription:
    """The current plan, its status, renewal, seats and monthly total, and the catalogue with
    what each plan would be for this account (upgrade, downgrade, contact sales)."""
    require(actor, Permission.PLAN_MANAGE)
    now = now or utcnow()
    account = account_of(session, actor.account_id)
    plan = get_plan(account.plan_code)
    custom_priced = _custom_priced(session, account)
    seats = seat_limit(plan, account.seats_purchased)
    card = None if custom_priced else payment_methods.default_method(session, account_id_of(account))
    return Subscription(
        plan_code=plan.code,
        plan_name=plan.name,
        status=account.plan_status.title(),
        custom_priced=custom_priced,
        seats=seats,
        seats_used=_seats_used(session, account_id_of(account)),
        included_seats=plan.included_seats,
        seat_price_cents=plan.seat_price_cents,
        monthly_cents=plan.monthly_cents(seats or 0),
        renews_on=_renews_on(account, now) if plan.paid else "",
        card=payment_methods.label(card) if card else "",
        plans=tuple(_plan_card(p, plan, custom_priced) for p in CATALOGUE),
    )


def _renews_on(account: Account, now: datetime) -> str:
    """The end of the current period, in the account's timezone."""
    _, end = billing_period(now)
    renewal = datetime.combine(end, time(), tzinfo=UTC)
    return format_date(renewal.astimezone(zone(account.timezone)).date())


# Quotes: every rule is checked here, before anything is shown or changed


def quote_plan(session: Session, actor: Actor, plan_code: str, now: datetime | None = None) -> Quote:
    """What moving to another plan costs or credits now, and the monthly total after it."""
    require(actor, Permission.PLAN_MANAGE)
    return _plan_quote(session, account_of(session, actor.account_id), plan_code, now or utcnow())


def quote_seats(session: Session, actor: Actor, seats_text: str, now: datetime | None = None) -> Quote:
    """What changing the number of seats costs or credits now, and the monthly total after it."""
    require(actor, Permission.PLAN_MANAGE)
    return _seats_quote(session, account_of(session, actor.account_id), seats_text, now or utcnow())


def _plan_quote(session: Session, account: Account, plan_code: str, now: datetime) -> Quote:
    current = _self_serve_plan(session, account)
    target = PLANS.get(plan_code)
    if target is None:
        raise ValidationFailed("Choose one of the plans shown.", field="plan")
    if target.invoice_priced:
        raise Conflict(f"Custom pricing is arranged with our sales team: write to {SALES_EMAIL}.", field="plan")
    if target.code == current.code:
        raise Conflict(f"You are already on the {current.name} plan.", field="plan")
    from_seats = _self_serve_seats(current, account)
    to_seats = max(target.included_seats, from_seats) if target.paid else target.included_seats
    used = _seats_used(session, account_id_of(account))
    if used > to_seats:
        raise Conflict(
            f"{_seats_text(used)} are in use, but {target.name} includes {to_seats}. "
            "Remove users or revoke invitations on the Team page first.",
            field="plan",
        )
    return _quote(session, account, "plan", current, target, from_seats, to_seats, now)


def _seats_quote(session: Session, account: Account, seats_text: str, now: datetime) -> Quote:
    plan = _self_serve_plan(session, account)
    if not plan.paid:
        raise Conflict(
            f"{plan.name} includes {_seats_text(plan.included_seats)}. Upgrade to a paid plan to add seats.",
            field="seats",
        )
    seats = _parse_seats(seats_text)
    used = _seats_used(session, account_id_of(account))
    if seats < plan.included_seats:
        raise ValidationFailed(
            f"Your {plan.name} plan includes {_seats_text(plan.included_seats)}; you cannot have fewer.", field="seats"
        )
    if seats < used:
        raise ValidationFailed(
            f"{_seats_text(used)} are in use. Remove users or revoke invitations on the Team page to go below that.",
            field="seats",
        )
    from_seats = _self_serve_seats(plan, account)
    if seats == from_seats:
        raise ValidationFailed(f"You already have {_seats_text(seats)}.", field="seats")
    return _quote(session, account, "seats", plan, plan, from_seats, seats, now)


def _quote(
    session: Session,
    account: Account,
    kind: str,
    from_plan: Plan,
    to_plan: Plan,
    from_seats: int,
    to_seats: int,
    now: datetime,
) -> Quote:
    card = payment_methods.default_method(session, account_id_of(account))
    if to_plan.paid and card is None:
        raise CardRequired(CARD_REQUIRED_MESSAGE)
    return Quote(
        kind=kind,
        from_plan=from_plan,
        to_plan=to_plan,
        from_seats=from_seats,
        to_seats=to_seats,
        proration=prorate(from_plan.monthly_cents(from_seats), to_plan.monthly_cents(to_seats), now),
        card=payment_methods.label(card) if card else "",
        renews_on=_renews_on(account, now),
    )


def _parse_seats(text: str) -> int:
    text = (text or "").strip()
    if not re.fullmatch(r"\d{1,7}", text, re.ASCII):
        raise ValidationFailed("Enter a whole number of seats.", field="seats")
    seats = int(text)
    if not 1 <= seats <= MAX_SEATS:
        raise ValidationFailed(f"Enter a number of seats from 1 to {MAX_SEATS:,}.", field="seats")
    return seats


def _custom_priced(session: Session, account: Account) -> bool:
    return (
        get_plan(account.plan_code).invoice_priced or billing_settings(session, account_id_of(account)).invoice_priced
    )


def _self_serve_plan(session: Session, account: Account) -> Plan:
    if _custom_priced(session, account):
        raise Conflict(CUSTOM_PRICED_MESSAGE)
    return get_plan(account.plan_code)


def _self_serve_seats(plan: Plan, account: Account) -> int:
    """The seats of a self-serve plan, which always limits them."""
    return seat_limit(plan, account.seats_purchased) or 0


def _seats_used(session: Session, account_id: int) -> int:
    return session.exec(
        select(func.count(col(User.id))).where(User.account_id == account_id, col(User.status).in_(SEAT_STATUSES))
    ).one()


# Changes


def change_plan(
    session: Session,
    actor: Actor,
    *,
    plan_code: str,
    request_key: str,
    expected_amount_cents: int | None = None,
    now: datetime | None = None,
) -> ChangeResult:
    """Move to another plan now: charge or credit the prorated difference (see the module's
    docstring). `expected_amount_cents` is the amount the confirmation showed: a different one
    raises QuoteChanged and changes nothing."""
    require(actor, Permission.PLAN_MANAGE)
    return _change(
        session,
        actor,
        request_key,
        expected_amount_cents,
        now,
        lambda account, moment: _plan_quote(session, account, plan_code, moment),
    )


def change_seats(
    session: Session,
    actor: Actor,
    *,
    seats_text: str,
    request_key: str,
    expected_amount_cents: int | None = None,
    now: datetime | None = None,
) -> ChangeResult:
    """Change the number of seats now: more are charged prorated to the card at once, fewer are
    credited prorated to the balance (like a downgrade)."""
    require(actor, Permission.PLAN_MANAGE)
    return _change(
        session,
        actor,
        request_key,
        expected_amount_cents,
        now,
        lambda account, moment: _seats_quote(session, account, seats_text, moment),
    )


def _change(
    session: Session,
    actor: Actor,
    request_key: str,
    expected_amount_cents: int | None,
    now: datetime | None,
    quote_for: Callable[[Account, datetime], Quote],
) -> ChangeResult:
    if not request_key:
        raise ValidationFailed("A request key is required.")
    # One change at a time per account; a replay waits for the first to commit, then finds it.
    lock_account(session, actor.account_id)
    key = f"{actor.account_id}:{request_key}"
    replayed = session.exec(select(PlanChange).where(PlanChange.idempotency_key == key)).first()
    if replayed is not None:
        return _refreshed(session, replayed)
    _settle_waiting(session, actor.account_id)
    now = now or utcnow()
    account = account_of(session, actor.account_id)
    quote = quote_for(account, now)
    if expected_amount_cents is not None and expected_amount_cents != quote.amount_cents:
        raise QuoteChanged(
            "The amounts have changed since you opened this confirmation. Review them and confirm again."
        )
    change = PlanChange(
        account_id=account_id_of(account),
        from_plan_code=quote.from_plan.code,
        to_plan_code=quote.to_plan.code,
        from_seats=quote.from_seats,
        to_seats=quote.to_seats,
        amount_cents=quote.amount_cents,
        effective_at=now,
        idempotency_key=key,
    )
    session.add(change)
    session.flush()
    if change.amount_cents <= 0:
        _apply(session, change, None)
        result = _result(session, change)
    else:
        result = _charge(session, actor, change)
    audit.record(session, actor, "plan.change", _audit_summary(change, result.status))
    return result


def _audit_summary(change: PlanChange, status: str) -> str:
    old, new = get_plan(change.from_plan_code), get_plan(change.to_plan_code)
    what = (
        f"Changed the plan from {old.name} to {new.name}"
        if old.code != new.code
        else f"Changed the seats from {change.from_seats} to {change.to_seats}"
    )
    if change.amount_cents > 0:
        money = f"{format_usd(change.amount_cents)} charged"
    elif change.amount_cents < 0:
        money = f"{format_usd(-change.amount_cents)} credited"
    else:
        money = "no charge"
    return f"{what} ({money}): {status}"


def _charge(session: Session, actor: Actor, change: PlanChange) -> ChangeResult:
    card = payment_methods.default_method(session, change.account_id)
    if card is None:
        raise CardRequired(CARD_REQUIRED_MESSAGE)
    payment, _ = payments.open_payment(
        session,
        account_id=change.account_id,
        amount_cents=change.amount_cents,
        method="plan",
        idempotency_key=f"plan:{change.public_id}",
        payment_method_id=card.stripe_payment_method_id,
        created_by_user_id=actor.user_id,
        plan_change_id=change.id,
    )
    change.payment_id = payment.id
    session.add(change)
    secret = payments.charge(
        session,
        payment,
        idempotency_key=f"plan:{change.public_id}",
        metadata=payments.metadata(payment, "plan_change", plan_change_id=change.public_id),
    )
    return _result(session, change, secret)


def _lock(session: Session, payment: Payment) -> None:
    """One change at a time per account, also when Stripe's webhook settles a payment."""
    lock_account(session, payment.account_id)


@payments.on_settled("plan", lock=_lock)
def _settled(session: Session, payment: Payment, now: datetime) -> None:
    """The change's payment ended, seen by the request, the 3-D Secure step or Stripe's webhook.
    A success applies the change, once; a change that had been given up (Stripe's answer was
    lost) only while the account is still as the change found it, else the charge is logged to
    be refunded. A failure ends a pending change."""
    change = session.get(PlanChange, payment.plan_change_id) if payment.plan_change_id else None
    if change is None:
        log.warning("payment %s is for no plan change", payment.public_id)
        return
    if payment.status == "succeeded":
        if change.status == "pending" or (change.status == "failed" and _still_as_found(session, change)):
            _apply(session, change, payment)
        else:
            log.error(
                "plan change %s was charged (payment %s) after it ended: refund it", change.public_id, payment.public_id
            )
    elif change.status == "pending":
        change.status = "failed"
        change.failure_message = payment.failure_message
        session.add(change)
        session.flush()


def _still_as_found(session: Session, change: PlanChange) -> bool:
    account = account_of(session, change.account_id)
    plan = get_plan(account.plan_code)
    return plan.code == change.from_plan_code and seat_limit(plan, account.seats_purchased) == change.from_seats


def _settle_waiting(session: Session, account_id: int) -> None:
    """Before a new change: a change left waiting for 3-D Secure is cancelled at Stripe, or
    applied if it succeeded meanwhile. One whose payment is still processing blocks new changes."""
    waiting = session.exec(
        select(PlanChange).where(PlanChange.account_id == account_id, PlanChange.status == "pending")
    ).all()
    for change in waiting:
        payment = session.get(Payment, change.payment_id) if change.payment_id else None
        if payment is not None:
            payments.cancel_waiting(session, payment, "Replaced by a newer change.")
        if change.status == "pending":
            raise Conflict("The payment for your previous change is still processing. Try again in a minute.")


def _apply(session: Session, change: PlanChange, payment: Payment | None) -> None:
    """The change takes effect: plan, seats, period, overage line, and its invoice or credit."""
    account = account_of(session, change.account_id)
    plan = get_plan(change.to_plan_code)
    start, end = billing_period(change.effective_at)
    account.plan_code = plan.code
    account.seats_purchased = change.to_seats if plan.paid else 0
    account.plan_status = "active"
    account.plan_period_start = datetime.combine(start, time(), tzinfo=UTC) if plan.paid else None
    account.plan_renews_at = datetime.combine(end, time(), tzinfo=UTC) if plan.paid else None
    session.add(account)
    if change.from_plan_code != change.to_plan_code:
        ledger.set_overage_credit_line(session, account_id_of(account), plan.overage_credit_line_cents)
    if change.amount_cents > 0:
        invoice = invoices.issue_for_plan_change(
            session,
            account_id_of(account),
            from_plan=change.from_plan_code,
            to_plan=change.to_plan_code,
            from_seats=change.from_seats,
            to_seats=change.to_seats,
            effective_at=change.effective_at,
            change_key=change.public_id,
        )
        if invoice is not None:
            invoices.mark_paid(session, invoice, payment)
    elif change.amount_cents < 0:
        ledger.credit(
            session,
            account_id=account_id_of(account),
            amount_cents=-change.amount_cents,
            source="plan_change",
            description=_credit_description(change),
            idempotency_key=f"plan_change:{change.public_id}",
        )
    change.status = "applied"
    change.failure_message = ""
    change.applied_at = utcnow()
    session.add(change)
    session.flush()


def _credit_description(change: PlanChange) -> str:
    """ "Downgrade from Business to Pro: 9 of 30 days left in the billing period"."""
    old, new = get_plan(change.from_plan_code), get_plan(change.to_plan_code)
    proration = prorate(old.monthly_cents(change.from_seats), new.monthly_cents(change.to_seats), change.effective_at)
    days = f"{proration.days_left} of {proration.days_total} days left in the billing period"
    if old.code == new.code:
        return f"Seats reduced from {change.from_seats} to {change.to_seats} on {new.name}: {days}"
    return f"Downgrade from {old.name} to {new.name}: {days}"


def _refreshed(session: Session, change: PlanChange) -> ChangeResult:
    """A change waiting for its payment, brought up to date from Stripe (with the client secret
    the page needs while 3-D Secure is pending); an ended one as recorded."""
    payment = session.get(Payment, change.payment_id) if change.payment_id else None
    if change.status != "pending" or payment is None:
        return _result(session, change)
    return _result(session, change, payments.refresh(session, payment))


def _result(session: Session, change: PlanChange, client_secret: str = "") -> ChangeResult:
    payment = session.get(Payment, change.payment_id) if change.payment_id else None
    status = payment.status if change.status == "pending" and payment is not None else change.status
    return ChangeResult(
        status=status,
        change_id=change.public_id,
        amount_cents=change.amount_cents,
        plan_name=get_plan(change.to_plan_code).name,
        seats=change.to_seats,
        payment_intent_id=(payment.stripe_payment_intent_id or "") if payment else "",
        client_secret=client_secret if status == "requires_action" else "",
        message=change.failure_message,
    )
