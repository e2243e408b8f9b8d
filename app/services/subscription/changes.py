"""Changes of plan or seats: written before the card is charged, applied once the payment
succeeds (this module registers what a settled "plan" payment means), or credited at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlmodel import Session, select

from app.errors import Conflict, ValidationFailed
from app.models import Account, Invoice, Payment, PlanChange, utcnow
from app.services import audit, invoices, ledger, payment_methods, payments
from app.services.customers import account_id_of, account_of
from app.services.invoices import billing_period, prorate
from app.services.money import format_usd
from app.services.payment_outcome import PaymentOutcome
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.roles import lock_account
from app.services.subscription import paid
from app.services.subscription.quotes import (
    CARD_REQUIRED_MESSAGE,
    CardRequired,
    Quote,
    QuoteChanged,
    plan_quote,
    seats_quote,
    step_down_quote,
)
from app.services.team import seat_limit

log = logging.getLogger("ledgerdesk.subscription")


@dataclass(frozen=True)
class ChangeResult(PaymentOutcome):
    """status "applied" when the change took effect. After 3-D Secure the page confirms again with
    the same request key, which brings the change up to date."""

    change_id: str
    plan_name: str
    seats: int
    # Of a negative amount: credited to the balance, and taken off the open renewal invoice.
    credited_cents: int = 0
    invoice_cents: int = 0

    @property
    def settlement(self) -> str:
        """What moved, in a sentence ("" when nothing did)."""
        if self.amount_cents > 0:
            return (
                f"{format_usd(self.amount_cents)} was charged to your card; the paid invoice is on the Invoices page."
            )
        parts = []
        if self.credited_cents:
            parts.append(
                f"{format_usd(self.credited_cents)} was credited to your balance; it is listed in Balance History."
            )
        if self.invoice_cents:
            parts.append(
                f"{format_usd(self.invoice_cents)} was taken off your unpaid invoice, issued again on the Invoices page."
            )
        return " ".join(parts)


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
        lambda account, moment: plan_quote(session, account, plan_code, moment),
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
        lambda account, moment: seats_quote(session, account, seats_text, moment),
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
    replayed = session.exec(
        select(PlanChange).where(PlanChange.account_id == actor.account_id, PlanChange.idempotency_key == key)
    ).first()
    if replayed is not None:
        return _refreshed(session, replayed)
    _settle_waiting(session, actor.account_id)
    now = now or utcnow()
    account = account_of(session, actor.account_id)
    quote = quote_for(account, now)
    if quote.credit.invoice_cents:
        renewal = paid.period_money(session, actor.account_id, now).open_renewal
        if renewal is not None:
            paid.settle_invoice_payment(session, renewal)
            if renewal.status != "open":
                quote = quote_for(account, now)
    if expected_amount_cents is not None and expected_amount_cents != quote.amount_cents:
        raise QuoteChanged(
            "The amounts have changed since you opened this confirmation. Review them and confirm again."
        )
    change = _new_change(session, account, quote, key, now)
    if change.amount_cents <= 0:
        _apply(session, change, None)
        result = _result(session, change)
    else:
        result = _charge(session, actor, change)
    audit.record(session, actor, "plan.change", _audit_summary(change, result.status))
    return result


def _new_change(session: Session, account: Account, quote: Quote, key: str, now: datetime) -> PlanChange:
    """The change the quote describes, stored under its idempotency key."""
    change = PlanChange(
        account_id=account_id_of(account),
        from_plan_code=quote.from_plan.code,
        to_plan_code=quote.to_plan.code,
        from_seats=quote.from_seats,
        to_seats=quote.to_seats,
        amount_cents=quote.amount_cents,
        credited_cents=quote.credit.credited_cents,
        invoice_cents=quote.credit.invoice_cents,
        effective_at=now,
        idempotency_key=key,
    )
    session.add(change)
    session.flush()
    return change


def step_down_unpaid(
    session: Session, account_id: int, invoice_id: int, now: datetime | None = None
) -> PlanChange | None:
    """The operator's final action after the last charge of a renewal failed (dunning,
    DUNNING_FINAL_ACTION=downgrade): the plan steps down to Basic as a downgrade does, whatever
    seats are in use. Unpaid time is not credited: it comes off the open renewal invoice, which is
    reissued for the days the paid plan was used. Once per invoice; nothing when it was paid
    meanwhile or the plan costs nothing."""
    invoice = session.get(Invoice, (account_id, invoice_id))
    if invoice is None:
        return None
    lock_account(session, invoice.account_id)
    key = f"{invoice.account_id}:unpaid:{invoice.public_id}"
    done = session.exec(
        select(PlanChange).where(PlanChange.account_id == invoice.account_id, PlanChange.idempotency_key == key)
    ).first()
    session.refresh(invoice)
    if done is not None or invoice.status != "open":
        return done
    _settle_waiting(session, invoice.account_id)
    now = now or utcnow()
    account = account_of(session, invoice.account_id)
    quote = step_down_quote(session, account, now)
    if quote is None:
        return None
    change = _new_change(session, account, quote, key, now)
    _apply(session, change, None)
    audit.record_without_user(
        session,
        change.account_id,
        audit.BILLING,
        "plan.change",
        f"Invoice {invoices.label(invoice, account)} unpaid after {invoice.failed_collections} failed charges. "
        + _audit_summary(change, change.status),
        now=now,
    )
    return change


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
        money = f"{format_usd(change.credited_cents)} credited"
        if change.invoice_cents:
            money += f", {format_usd(change.invoice_cents)} taken off the open invoice"
        if kept := -change.amount_cents - change.credited_cents - change.invoice_cents:
            money += f", {format_usd(kept)} unpaid not credited"
    else:
        money = "no charge"
    return f"{what} ({money}): {status}"


def _charge(session: Session, actor: Actor, change: PlanChange) -> ChangeResult:
    card = payment_methods.default_method(session, change.account_id)
    if card is None:
        raise CardRequired(CARD_REQUIRED_MESSAGE)
    key = f"plan:{change.public_id}"
    _, secret = payments.open_and_charge(
        session, change, change.amount_cents, card=card, user_id=actor.user_id, idempotency_key=key
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
    change = session.get(PlanChange, (payment.account_id, payment.plan_change_id)) if payment.plan_change_id else None
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
        payment = session.get(Payment, (change.account_id, change.payment_id)) if change.payment_id else None
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
            amount_cents=change.amount_cents,
        )
        if invoice is not None:
            invoices.mark_paid(session, invoice, payment)
    if change.invoice_cents:
        renewal = paid.renewal_invoice(session, change.account_id, change.effective_at)
        if renewal is None or renewal.status != "open":
            raise Conflict("Your open invoice changed meanwhile. Review the amounts and confirm again.")
        invoices.reissue_for_less(
            session,
            renewal,
            less_cents=change.invoice_cents,
            plan_cents=renewal.plan_cents - change.invoice_cents,
            description=_credit_description(change),
            idempotency_key=f"plan_change:{change.public_id}",
        )
    if change.credited_cents:
        ledger.credit(
            session,
            account_id=account_id_of(account),
            amount_cents=change.credited_cents,
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
    payment = session.get(Payment, (change.account_id, change.payment_id)) if change.payment_id else None
    if change.status != "pending" or payment is None:
        return _result(session, change)
    return _result(session, change, payments.refresh(session, payment))


def _result(session: Session, change: PlanChange, client_secret: str = "") -> ChangeResult:
    payment = session.get(Payment, (change.account_id, change.payment_id)) if change.payment_id else None
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
        credited_cents=change.credited_cents,
        invoice_cents=change.invoice_cents,
    )
