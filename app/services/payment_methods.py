"""Saved payment methods: cards and SEPA Direct Debit bank accounts, captured through a
SetupIntent that Stripe.js confirms in the browser; the account's list, the default method (also
the Stripe customer's default for invoices) and deleting them. An IBAN is checked here before
anything is sent to Stripe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import object_session
from sqlmodel import Session, col, select
from stdnum import iban as iban_numbers
from stdnum.exceptions import ValidationError as InvalidNumber

from app.errors import Conflict, NotFound, ValidationFailed
from app.models import PaymentMethod, utcnow
from app.payments import gateway
from app.services import audit, live
from app.services.customers import account_of, customer_for, stripe_customer_id
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.timefmt import zone

INVOICE_PRICED_MESSAGE = "Your account pays by invoice, so no card can be added."

# Countries of the SEPA scheme (EU and EEA members, and the others that take part).
SEPA_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CH",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GB",
        "GI",
        "GR",
        "HR",
        "HU",
        "IE",
        "IS",
        "IT",
        "LI",
        "LT",
        "LU",
        "LV",
        "MC",
        "MT",
        "NL",
        "NO",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
        "SM",
        "VA",
        "AD",
    ]
)
SEPA_MANDATE = (
    "By providing your IBAN and confirming this form, you authorise Ledgerdesk Inc. and Stripe, our "
    "payment service provider, to send instructions to your bank to debit your account, and your bank to "
    "debit your account in accordance with those instructions. You are entitled to a refund from your bank "
    "under the terms and conditions of your agreement with your bank. A refund must be claimed within 8 "
    "weeks starting from the date on which your account was debited."
)


@dataclass(frozen=True)
class BankAccount:
    """What Stripe.js sends with confirmSepaDebitSetup, checked."""

    holder_name: str
    email: str
    iban: str


def _require_card_account(session: Session, actor: Actor) -> None:
    require(actor, Permission.BILLING_MANAGE)
    if billing_settings(session, actor.account_id).invoice_priced:
        raise ValidationFailed(INVOICE_PRICED_MESSAGE)


def start_card_setup(session: Session, actor: Actor) -> str:
    """A SetupIntent's client secret for the Card Element (off-session use)."""
    _require_card_account(session, actor)
    customer_id = customer_for(session, actor.account_id)
    return gateway.create_setup_intent(customer_id)


def check_bank_account(holder_name: str, email: str, iban: str, mandate_accepted: bool) -> BankAccount:
    """The SEPA form's fields, each refused with its own message at its field."""
    holder_name = " ".join(holder_name.split())
    if not holder_name:
        raise ValidationFailed("Enter the account holder's name.", field="sepa_holder_name")
    try:
        email = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValidationFailed("Enter a valid email address.", field="sepa_email") from None
    number = iban_numbers.compact(iban)
    if not number:
        raise ValidationFailed("Enter the IBAN.", field="iban")
    try:
        iban_numbers.validate(number)
    except InvalidNumber:
        raise ValidationFailed("This IBAN is not valid. Check it against your bank statement.", field="iban") from None
    if number[:2] not in SEPA_COUNTRIES:
        raise ValidationFailed("This bank account is not in a SEPA country.", field="iban")
    if not mandate_accepted:
        raise ValidationFailed("Accept the SEPA Direct Debit mandate to continue.", field="mandate")
    return BankAccount(holder_name, email, number)


def start_bank_account_setup(
    session: Session, actor: Actor, *, holder_name: str, email: str, iban: str, mandate_accepted: bool
) -> tuple[str, BankAccount]:
    """Check the SEPA form, then a SetupIntent's client secret for confirmSepaDebitSetup."""
    _require_card_account(session, actor)
    checked = check_bank_account(holder_name, email, iban, mandate_accepted)
    customer_id = customer_for(session, actor.account_id)
    return gateway.create_setup_intent(customer_id, "sepa_debit"), checked


def save_bank_account(session: Session, actor: Actor, payment_method_id: str, holder_name: str = "") -> PaymentMethod:
    """Attach the bank account Stripe.js just confirmed; the first method becomes the default."""
    return _attach(session, actor, payment_method_id, kind="sepa_debit", holder_name=holder_name)


def save_card(session: Session, actor: Actor, payment_method_id: str) -> PaymentMethod:
    """Attach the card Stripe.js just confirmed; the first card becomes the default."""
    return _attach(session, actor, payment_method_id, kind="card")


def _attach(
    session: Session, actor: Actor, payment_method_id: str, *, kind: str, holder_name: str = ""
) -> PaymentMethod:
    _require_card_account(session, actor)
    if not payment_method_id.startswith("pm_"):
        raise ValidationFailed("Stripe did not return a payment method.")
    # The id comes from the browser: never ask Stripe to move another account's card to us.
    if (
        session.exec(
            select(PaymentMethod.id).where(
                PaymentMethod.stripe_payment_method_id == payment_method_id,
                PaymentMethod.account_id != actor.account_id,
            )
        ).first()
        is not None
    ):
        raise NotFound("That card is not on file.")
    customer_id = customer_for(session, actor.account_id)
    attached = gateway.attach_payment_method(customer_id, payment_method_id)
    if attached.kind != kind:
        gateway.detach_payment_method(attached.id)
        raise ValidationFailed("Stripe returned another kind of payment method. Try again.")
    if holder_name and not attached.holder_name:
        gateway.set_billing_name(attached.id, holder_name)
    if not any(method.is_default for method in _methods(session, actor.account_id)):
        gateway.set_default_payment_method(customer_id, attached.id)
    rows = sync_payment_methods(
        session, actor.account_id, added_bank_account=attached.id if kind == "sepa_debit" else ""
    )
    saved = next(row for row in rows if row.stripe_payment_method_id == attached.id)
    audit.record(session, actor, "payment_method.add", f"Added {label(saved)}")
    return saved


def sync_payment_methods(session: Session, account_id: int, *, added_bank_account: str = "") -> list[PaymentMethod]:
    """Make our PaymentMethod rows mirror the customer's payment methods in Stripe, default flag
    included. Cards are listed; bank accounts are looked up one by one (ours and
    `added_bank_account`), because localstripe lists only cards."""
    live.mark(session, account_id)
    customer_id = stripe_customer_id(session, account_id)
    cards, default = gateway.list_cards(customer_id) if customer_id else ([], "")
    rows = {
        row.stripe_payment_method_id: row
        for row in session.exec(select(PaymentMethod).where(PaymentMethod.account_id == account_id))
    }
    bank_ids = {pm for pm, row in rows.items() if row.kind == "sepa_debit"} | ({added_bank_account} - {""})
    banks = [gateway.retrieve_payment_method(pm) for pm in sorted(bank_ids)] if customer_id else []
    cards += [bank for bank in banks if bank.customer == customer_id and bank.kind == "sepa_debit"]
    for stale in set(rows) - {card.id for card in cards}:
        session.delete(rows.pop(stale))
    for card in cards:
        row = rows.get(card.id) or PaymentMethod(account_id=account_id, stripe_payment_method_id=card.id)
        row.kind, row.brand, row.last4, row.bank_code = card.kind, card.brand, card.last4, card.bank_code
        row.exp_month, row.exp_year, row.holder_name = card.exp_month, card.exp_year, card.holder_name
        row.is_default = card.id == default
        session.add(row)
        rows[card.id] = row
    session.flush()
    return list(rows.values())


def default_method(session: Session, account_id: int) -> PaymentMethod | None:
    """The account's default card or bank account, which plans, products and recharges charge."""
    return session.exec(
        select(PaymentMethod).where(PaymentMethod.account_id == account_id, PaymentMethod.is_default == True)  # noqa: E712
    ).first()


def _methods(session: Session, account_id: int, *, lock: bool = False) -> list[PaymentMethod]:
    query = (
        select(PaymentMethod)
        .where(PaymentMethod.account_id == account_id)
        .order_by(col(PaymentMethod.is_default).desc(), col(PaymentMethod.created_at), col(PaymentMethod.id))
    )
    return list(session.exec(query.with_for_update() if lock else query))


def saved_methods(session: Session, actor: Actor) -> list[PaymentMethod]:
    """The account's saved methods, the default first."""
    require(actor, Permission.BILLING_VIEW)
    return _methods(session, actor.account_id)


def method_of(session: Session, account_id: int, payment_method_id: str) -> PaymentMethod | None:
    """The account's own method with this Stripe id; None for any other id (another account's too)."""
    return session.exec(
        select(PaymentMethod).where(
            PaymentMethod.account_id == account_id,
            PaymentMethod.stripe_payment_method_id == payment_method_id,
        )
    ).first()


def _owned(session: Session, account_id: int, payment_method_id: str) -> PaymentMethod:
    """One of the account's own methods; any other id (another account's too) is not found."""
    method = method_of(session, account_id, payment_method_id)
    if method is None:
        raise NotFound("That card is not on file.")
    return method


def set_default(session: Session, actor: Actor, payment_method_id: str) -> PaymentMethod:
    """Make a saved card the default, here and as the Stripe customer's invoice default."""
    _require_card_account(session, actor)
    method = _owned(session, actor.account_id, payment_method_id)
    customer_id = stripe_customer_id(session, actor.account_id)
    gateway.set_default_payment_method(customer_id, method.stripe_payment_method_id)
    sync_payment_methods(session, actor.account_id)
    audit.record(session, actor, "payment_method.default", f"Made {label(method)} the default payment method")
    return _owned(session, actor.account_id, payment_method_id)


def deletion_blocker(session: Session, actor: Actor, payment_method_id: str) -> str:
    """Why the card cannot be deleted ("" when it can): it is the account's only card and the
    plan or auto recharge depends on it."""
    require(actor, Permission.BILLING_MANAGE)
    method = _owned(session, actor.account_id, payment_method_id)
    if any(other.id != method.id for other in _methods(session, actor.account_id)):
        return ""
    plan = get_plan(account_of(session, actor.account_id).plan_code)
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
    customer_id = stripe_customer_id(session, actor.account_id)
    if method.is_default and others:
        if not new_default_id:
            raise ValidationFailed("Choose the card that becomes the default.", field="new_default")
        if new_default_id not in {m.stripe_payment_method_id for m in others}:
            raise ValidationFailed("Choose one of your other cards as the new default.", field="new_default")
        gateway.set_default_payment_method(customer_id, new_default_id)
    elif method.is_default:
        gateway.set_default_payment_method(customer_id, "")
    gateway.detach_payment_method(method.stripe_payment_method_id)
    sync_payment_methods(session, actor.account_id)
    audit.record(session, actor, "payment_method.delete", f"Deleted {label(method)}")


def is_expired(method: PaymentMethod, today: date) -> bool:
    """A card is good through the last day of its expiry month; a bank account does not expire."""
    if method.kind == "sepa_debit":
        return False
    return (method.exp_year, method.exp_month) < (today.year, today.month)


def expiry(method: PaymentMethod) -> str:
    """ "12/2030"; a bank account's bank code instead: "Bank code 37040044"."""
    if method.kind == "sepa_debit":
        return f"Bank code {method.bank_code}"
    return f"{method.exp_month:02d}/{method.exp_year}"


def label(method: PaymentMethod) -> str:
    """ "Visa •••• 4242"; "Visa •••• 4242 (exp 12/29)" while the account has another method with
    the same brand and last digits, so that lists and messages tell the two apart."""
    brand = "SEPA Debit" if method.kind == "sepa_debit" else (method.brand or "Card").title()
    shown = f"{brand} •••• {method.last4}"
    if method.kind == "card" and _has_twin(method):
        shown += f" (exp {method.exp_month:02d}/{method.exp_year % 100:02d})"
    return shown


def _has_twin(method: PaymentMethod) -> bool:
    session = object_session(method)
    if session is None:
        return False
    twin = session.scalars(
        select(PaymentMethod.id).where(
            PaymentMethod.account_id == method.account_id,
            PaymentMethod.kind == method.kind,
            PaymentMethod.brand == method.brand,
            PaymentMethod.last4 == method.last4,
            col(PaymentMethod.id) != method.id,
        )
    ).first()
    return twin is not None


def spoken_label(method: PaymentMethod) -> str:
    """ "Visa ending in 4242", for screen readers (bullets read badly)."""
    return label(method).replace("•••• ", "ending in ")


def describe(method: PaymentMethod) -> str:
    """ "Visa •••• 4242 (default)"."""
    return f"{label(method)} (default)" if method.is_default else label(method)


# --- What the pages show -------------------------------------------------------------------


@dataclass(frozen=True)
class MethodView:
    """One saved card or bank account as a page shows it."""

    id: str
    label: str
    spoken_label: str
    description: str
    holder_name: str
    expiry: str
    expired: bool
    is_default: bool
    bank_account: bool


@dataclass(frozen=True)
class MethodsOnFile:
    """The account's saved methods (the default first) and whether it pays by invoice instead."""

    methods: list[MethodView]
    invoice_priced: bool

    @property
    def default_id(self) -> str:
        return next((m.id for m in self.methods if m.is_default), "")


def view(method: PaymentMethod, today: date) -> MethodView:
    return MethodView(
        id=method.stripe_payment_method_id,
        label=label(method),
        spoken_label=spoken_label(method),
        description=describe(method),
        holder_name=method.holder_name or "—",
        expiry=expiry(method),
        expired=is_expired(method, today),
        is_default=method.is_default,
        bank_account=method.kind == "sepa_debit",
    )


def methods_on_file(session: Session, actor: Actor) -> MethodsOnFile:
    """The saved methods as the Payment Methods, Add Usage Credits and Invoices pages show them,
    expiry judged on today's date in the account's timezone."""
    methods = saved_methods(session, actor)
    today = utcnow().astimezone(zone(actor.timezone)).date()
    return MethodsOnFile(
        methods=[view(method, today) for method in methods],
        invoice_priced=billing_settings(session, actor.account_id).invoice_priced,
    )
