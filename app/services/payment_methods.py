"""Saved payment methods: card capture through a SetupIntent, the account's list of cards, the
default card (also the Stripe customer's default for invoices) and deleting cards."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from app.models import Account, PaymentMethod
from app.payments import gateway
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan

INVOICE_PRICED_MESSAGE = "Your account pays by invoice, so no card can be added."


def _require_card_account(session: Session, actor: Actor) -> None:
    require(actor, Permission.BILLING_MANAGE)
    if billing_settings(session, actor.account_id).invoice_priced:
        raise ValidationFailed(INVOICE_PRICED_MESSAGE)


def start_card_setup(session: Session, actor: Actor) -> str:
    """A SetupIntent's client secret for the Card Element (off-session use)."""
    _require_card_account(session, actor)
    customer_id = gateway.ensure_customer(session, session.get(Account, actor.account_id))
    return gateway.create_setup_intent(customer_id)


def save_card(session: Session, actor: Actor, payment_method_id: str) -> PaymentMethod:
    """Attach the card Stripe.js just confirmed; the first card becomes the default."""
    _require_card_account(session, actor)
    if not payment_method_id.startswith("pm_"):
        raise ValidationFailed("Stripe did not return a card.")
    # The id comes from the browser: never ask Stripe to move another account's card to us.
    if session.exec(
        select(PaymentMethod.id).where(
            PaymentMethod.stripe_payment_method_id == payment_method_id, PaymentMethod.account_id != actor.account_id
        )
    ).first() is not None:
        raise NotFound("That card is not on file.")
    customer_id = gateway.ensure_customer(session, session.get(Account, actor.account_id))
    gateway.attach_payment_method(customer_id, payment_method_id)
    if not any(method.is_default for method in _methods(session, actor.account_id)):
        gateway.set_default_payment_method(customer_id, payment_method_id)
    rows = gateway.sync_payment_methods(session, actor.account_id)
    return next(row for row in rows if row.stripe_payment_method_id == payment_method_id)


def _methods(session: Session, account_id: int, *, lock: bool = False) -> list[PaymentMethod]:
    query = (
        select(PaymentMethod)
        .where(PaymentMethod.account_id == account_id)
        .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at, PaymentMethod.id)
    )
    return list(session.exec(query.with_for_update() if lock else query))


def saved_methods(session: Session, actor: Actor) -> list[PaymentMethod]:
    """The account's saved methods, the default first."""
    require(actor, Permission.BILLING_VIEW)
    return _methods(session, actor.account_id)


def _owned(session: Session, account_id: int, payment_method_id: str) -> PaymentMethod:
    """One of the account's own methods; any other id (another account's too) is not found."""
    method = session.exec(
        select(PaymentMethod).where(
            PaymentMethod.account_id == account_id,
            PaymentMethod.stripe_payment_method_id == payment_method_id,
        )
    ).first()
    if method is None:
        raise NotFound("That card is not on file.")
    return method


def set_default(session: Session, actor: Actor, payment_method_id: str) -> PaymentMethod:
    """Make a saved card the default, here and as the Stripe customer's invoice default."""
    _require_card_account(session, actor)
    method = _owned(session, actor.account_id, payment_method_id)
    customer_id = billing_settings(session, actor.account_id).stripe_customer_id
    gateway.set_default_payment_method(customer_id, method.stripe_payment_method_id)
    gateway.sync_payment_methods(session, actor.account_id)
    return _owned(session, actor.account_id, payment_method_id)


def deletion_blocker(session: Session, actor: Actor, payment_method_id: str) -> str:
    """Why the card cannot be deleted ("" when it can): it is the account's only card and the
    plan or auto recharge depends on it."""
    require(actor, Permission.BILLING_MANAGE)
    method = _owned(session, actor.account_id, payment_method_id)
    if any(other.id != method.id for other in _methods(session, actor.account_id)):
        return ""
    plan = get_plan(session.get(Account, actor.account_id).plan_code)
    if plan.seat_price_cents > 0 and not plan.invoice_priced:
        return f"Your {plan.name} plan is billed to this card. Add another card before deleting this one."
    if billing_settings(session, actor.account_id).auto_recharge_enabled:
        return "Auto recharge charges this card. Turn off auto recharge or add another card before deleting this one."
    return ""


def delete_method(session: Session, actor: Actor, payment_method_id: str, new_default_id: str = "") -> None:
    """Detach a card. Deleting the default card while others exist needs `new_default_id`, one of
    the others; deleting the only card is refused while the plan or auto recharge depends on it."""
    require(actor, Permission.BILLING_MANAGE)
    # Two deletes at once must not each see the other's card as the one that remains.
    _methods(session, actor.account_id, lock=True)
    if blocker := deletion_blocker(session, actor, payment_method_id):
        raise Conflict(blocker)
    method = _owned(session, actor.account_id, payment_method_id)
    others = [m for m in _methods(session, actor.account_id) if m.id != method.id]
    customer_id = billing_settings(session, actor.account_id).stripe_customer_id
    if method.is_default and others:
        if not new_default_id:
            raise ValidationFailed("Choose the card that becomes the default.", field="new_default")
        if new_default_id not in {m.stripe_payment_method_id for m in others}:
            raise ValidationFailed("Choose one of your other cards as the new default.", field="new_default")
        gateway.set_default_payment_method(customer_id, new_default_id)
    elif method.is_default:
        gateway.set_default_payment_method(customer_id, "")
    gateway.detach_payment_method(method.stripe_payment_method_id)
    gateway.sync_payment_methods(session, actor.account_id)


def is_expired(method: PaymentMethod, today: date) -> bool:
    """A card is good through the last day of its expiry month."""
    return (method.exp_year, method.exp_month) < (today.year, today.month)


def expiry(method: PaymentMethod) -> str:
    """"12/2030"."""
    return f"{method.exp_month:02d}/{method.exp_year}"


def label(method: PaymentMethod) -> str:
    """"Visa •••• 4242"."""
    brand = "SEPA Debit" if method.kind == "sepa_debit" else (method.brand or "Card").title()
    return f"{brand} •••• {method.last4}"


def spoken_label(method: PaymentMethod) -> str:
    """"Visa ending in 4242", for screen readers (bullets read badly)."""
    return label(method).replace("•••• ", "ending in ")


def describe(method: PaymentMethod) -> str:
    """"Visa •••• 4242 (default)"."""
    return f"{label(method)} (default)" if method.is_default else label(method)
