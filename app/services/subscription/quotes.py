"""Quotes: what a change of plan or seats costs or credits now; every rule is checked here,
before anything is shown or changed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.errors import Conflict, ValidationFailed
from app.models import Account, utcnow
from app.services import invoices, payment_methods
from app.services.customers import account_id_of, account_of
from app.services.invoices import Proration, prorate
from app.services.money import format_usd
from app.services.permissions import Actor, Permission, require
from app.services.plans import PLANS, Plan
from app.services.subscription.catalogue import (
    CARD_REQUIRED_MESSAGE,
    CATALOGUE,
    MAX_SEATS,
    SALES_EMAIL,
    is_custom_priced,
    monthly_text,
    renews_on,
    seats_label,
    seats_used,
    self_serve_plan,
    self_serve_seats,
    settled_cent_days,
)
from app.services.subscription.paid import CreditSplit, period_money, split_credit


class CardRequired(Conflict):
    """A paid plan needs a card on file: the page sends the user to Payment Methods."""

    code = "card_required"


class QuoteChanged(Conflict):
    """The amount is no longer the one the user confirmed (a new day began, or another change
    was made meanwhile): nothing happened, the page shows the new amounts."""

    code = "quote_changed"


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
    # How a credit (a negative amount) is given back; all zero otherwise.
    credit: CreditSplit = CreditSplit(0, 0, 0)
    # The open renewal invoice a credit is taken off ("" when none is).
    invoice: str = ""

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
            settle = [f"Charged now to {self.card}: {amount}, the difference for {days}."]
        elif self.amount_cents < 0:
            settle = self._credit_lines(days)
        else:
            settle = ["Nothing is charged or credited now."]
        after = (
            f"From {self.renews_on}, you pay {format_usd(self.new_monthly_cents)} per month."
            if self.to_plan.paid
            else "From then on, you pay nothing for your plan."
        )
        return (
            f"Now: {monthly_text(self.from_plan, self.from_seats)}.",
            f"After the change: {monthly_text(self.to_plan, self.to_seats)}.",
            *settle,
            after,
        )

    def _credit_lines(self, days: str) -> list[str]:
        credit = self.credit
        if credit.credited_cents == -self.amount_cents:
            return [f"Credited to your balance now: {format_usd(credit.credited_cents)}, the difference for {days}."]
        lines = [
            f"The difference for {days} is {format_usd(-self.amount_cents)}. Only time you have paid for is credited."
        ]
        if credit.invoice_cents:
            lines.append(
                f"Taken off your unpaid invoice {self.invoice}: {format_usd(credit.invoice_cents)}. "
                "It is voided and issued again for that much less."
            )
        if credit.credited_cents:
            lines.append(f"Credited to your balance now: {format_usd(credit.credited_cents)}.")
        if credit.kept_cents:
            lines.append(f"Not credited: {format_usd(credit.kept_cents)}, for time that was not paid for.")
        return lines


# Quotes: every rule is checked here, before anything is shown or changed


def quote_plan(session: Session, actor: Actor, plan_code: str, now: datetime | None = None) -> Quote:
    """What moving to another plan costs or credits now, and the monthly total after it."""
    require(actor, Permission.PLAN_MANAGE)
    return plan_quote(session, account_of(session, actor.account_id), plan_code, now or utcnow())


def quote_seats(session: Session, actor: Actor, seats_text: str, now: datetime | None = None) -> Quote:
    """What changing the number of seats costs or credits now, and the monthly total after it."""
    require(actor, Permission.PLAN_MANAGE)
    return seats_quote(session, account_of(session, actor.account_id), seats_text, now or utcnow())


def plan_quote(session: Session, account: Account, plan_code: str, now: datetime) -> Quote:
    current = self_serve_plan(session, account)
    target = PLANS.get(plan_code)
    if target is None:
        raise ValidationFailed("Choose one of the plans shown.", field="plan")
    if target.invoice_priced:
        raise Conflict(f"Custom pricing is arranged with our sales team: write to {SALES_EMAIL}.", field="plan")
    if target.code == current.code:
        raise Conflict(f"You are already on the {current.name} plan.", field="plan")
    from_seats = self_serve_seats(current, account)
    to_seats = max(target.included_seats, from_seats) if target.paid else target.included_seats
    used = seats_used(session, account_id_of(account))
    if used > to_seats:
        raise Conflict(
            f"{seats_label(used)} are in use, but {target.name} includes {to_seats}. "
            "Remove users or revoke invitations on the Team page first.",
            field="plan",
        )
    return _quote(session, account, "plan", current, target, from_seats, to_seats, now)


def seats_quote(session: Session, account: Account, seats_text: str, now: datetime) -> Quote:
    plan = self_serve_plan(session, account)
    if not plan.paid:
        raise Conflict(
            f"{plan.name} includes {seats_label(plan.included_seats)}. Upgrade to a paid plan to add seats.",
            field="seats",
        )
    seats = _parse_seats(seats_text)
    used = seats_used(session, account_id_of(account))
    if seats < plan.included_seats:
        raise ValidationFailed(
            f"Your {plan.name} plan includes {seats_label(plan.included_seats)}; you cannot have fewer.", field="seats"
        )
    if seats < used:
        raise ValidationFailed(
            f"{seats_label(used)} are in use. Remove users or revoke invitations on the Team page to go below that.",
            field="seats",
        )
    from_seats = self_serve_seats(plan, account)
    if seats == from_seats:
        raise ValidationFailed(f"You already have {seats_label(seats)}.", field="seats")
    return _quote(session, account, "seats", plan, plan, from_seats, seats, now)


def step_down_quote(session: Session, account: Account, now: datetime) -> Quote | None:
    """The plan stepping down to Basic after a renewal went unpaid: a downgrade
    made by the operator's rule, whatever seats are in use. None when the plan costs nothing or
    is custom-priced."""
    current = PLANS[account.plan_code]
    if not current.paid or is_custom_priced(session, account):
        return None
    basic = PLANS["basic"]
    return _quote(
        session, account, "plan", current, basic, self_serve_seats(current, account), basic.included_seats, now
    )


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
    account_id = account_id_of(account)
    card = payment_methods.default_method(session, account_id)
    if to_plan.paid and card is None:
        raise CardRequired(CARD_REQUIRED_MESSAGE)
    proration = prorate(
        from_plan.monthly_cents(from_seats),
        to_plan.monthly_cents(to_seats),
        now,
        settled_cent_days(session, account_id, now),
    )
    credit, invoice = CreditSplit(0, 0, 0), ""
    if proration.amount_cents < 0:
        money = period_money(session, account_id, now)
        credit = split_credit(money, -proration.amount_cents)
        if money.open_renewal is not None:
            invoice = invoices.label(money.open_renewal, account)
    return Quote(
        kind=kind,
        from_plan=from_plan,
        to_plan=to_plan,
        from_seats=from_seats,
        to_seats=to_seats,
        proration=proration,
        card=payment_methods.label(card) if card else "",
        renews_on=renews_on(account, now),
        credit=credit,
        invoice=invoice,
    )


def _parse_seats(text: str) -> int:
    text = (text or "").strip()
    if not re.fullmatch(r"\d{1,7}", text, re.ASCII):
        raise ValidationFailed("Enter a whole number of seats.", field="seats")
    seats = int(text)
    if not 1 <= seats <= MAX_SEATS:
        raise ValidationFailed(f"Enter a number of seats from 1 to {MAX_SEATS:,}.", field="seats")
    return seats
