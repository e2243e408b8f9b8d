"""Plans and seats: the catalogue and the Plans page's view of the current subscription (see the
package's docstring for the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.errors import Conflict
from app.models import Account, PlanChange, User, utcnow
from app.services import payment_methods
from app.services.customers import account_id_of, account_of
from app.services.info import format_bytes
from app.services.invoices import billing_period, past_due
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require
from app.services.plans import LIMITS, PLANS, Plan, get_plan
from app.services.team import SEAT_STATUSES, seat_limit
from app.services.timefmt import format_day

MAX_SEATS = 1_000
SALES_EMAIL = "sales@ledgerdesk.local"
PAYMENT_METHODS_PATH = "/billing/payment-methods"
CARD_REQUIRED_MESSAGE = "A paid plan needs a card on file. Add a card on the Payment Methods page, then come back here."
CUSTOM_PRICED_MESSAGE = (
    f"Your account has custom pricing and is billed by invoice. To change your plan or seats, contact {SALES_EMAIL}."
)
CATALOGUE = tuple(PLANS.values())


# What changes in a period add up to (the proration's running total)


def change_cent_days(change: PlanChange) -> int:
    """What a change adds to its period's total, in cents × days: the difference in the monthly
    total × the days left when it was made."""
    old, new = get_plan(change.from_plan_code), get_plan(change.to_plan_code)
    _, end = billing_period(change.effective_at)
    days_left = (end - change.effective_at.astimezone(UTC).date()).days
    return (new.monthly_cents(change.to_seats) - old.monthly_cents(change.from_seats)) * days_left


def applied_changes(session: Session, account_id: int, moment: datetime) -> list[PlanChange]:
    """The changes applied in `moment`'s period, in the order they were made."""
    start, end = billing_period(moment)
    first, after = (datetime.combine(day, time(), tzinfo=UTC) for day in (start, end))
    return list(
        session.exec(
            select(PlanChange)
            .where(
                PlanChange.account_id == account_id,
                PlanChange.status == "applied",
                col(PlanChange.effective_at) >= first,
                col(PlanChange.effective_at) < after,
            )
            .order_by(col(PlanChange.id))
        )
    )


def settled_cent_days(session: Session, account_id: int, moment: datetime) -> int:
    """The changes applied so far in `moment`'s period, in cents × days (`prorate`)."""
    return sum(change_cent_days(change) for change in applied_changes(session, account_id, moment))


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
    # "Active", or "Past due" while an open invoice's charge failed or its due date passed.
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
        return f"{format_usd(self.seat_price_cents)} × {seats_label(self.seats)} = {format_usd(self.monthly_cents)} per month"


def seats_label(seats: int) -> str:
    return f"{seats} seat" if seats == 1 else f"{seats} seats"


def monthly_text(plan: Plan, seats: int) -> str:
    if not plan.paid:
        return f"{plan.name}, {seats_label(seats)}, free"
    return (
        f"{plan.name}, {format_usd(plan.seat_price_cents)} × {seats_label(seats)} = "
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
        seats = f"Includes {seats_label(plan.included_seats)}"
    return PlanCard(plan.code, plan.name, price, seats, plan.features, _limit_texts(plan), action)


def overview(session: Session, actor: Actor, now: datetime | None = None) -> Subscription:
    """The current plan, its status, renewal, seats and monthly total, and the catalogue with
    what each plan would be for this account (upgrade, downgrade, contact sales)."""
    require(actor, Permission.PLAN_MANAGE)
    now = now or utcnow()
    account = account_of(session, actor.account_id)
    plan = get_plan(account.plan_code)
    custom_priced = is_custom_priced(session, account)
    seats = seat_limit(plan, account.seats_purchased)
    card = None if custom_priced else payment_methods.default_method(session, account_id_of(account))
    return Subscription(
        plan_code=plan.code,
        plan_name=plan.name,
        status="Past due" if past_due(session, account_id_of(account), now) else account.plan_status.title(),
        custom_priced=custom_priced,
        seats=seats,
        seats_used=seats_used(session, account_id_of(account)),
        included_seats=plan.included_seats,
        seat_price_cents=plan.seat_price_cents,
        monthly_cents=plan.monthly_cents(seats or 0),
        renews_on=renews_on(account, now) if plan.paid else "",
        card=payment_methods.label(card) if card else "",
        plans=tuple(_plan_card(p, plan, custom_priced) for p in CATALOGUE),
    )


def renews_on(account: Account, now: datetime) -> str:
    """The end of the current period, in the account's timezone."""
    _, end = billing_period(now)
    renewal = datetime.combine(end, time(), tzinfo=UTC)
    return format_day(renewal, account.timezone)


def is_custom_priced(session: Session, account: Account) -> bool:
    return (
        get_plan(account.plan_code).invoice_priced or billing_settings(session, account_id_of(account)).invoice_priced
    )


def self_serve_plan(session: Session, account: Account) -> Plan:
    if is_custom_priced(session, account):
        raise Conflict(CUSTOM_PRICED_MESSAGE)
    return get_plan(account.plan_code)


def self_serve_seats(plan: Plan, account: Account) -> int:
    """The seats of a self-serve plan, which always limits them."""
    return seat_limit(plan, account.seats_purchased) or 0


def seats_used(session: Session, account_id: int) -> int:
    return session.exec(
        select(func.count(col(User.id))).where(User.account_id == account_id, col(User.status).in_(SEAT_STATUSES))
    ).one()
