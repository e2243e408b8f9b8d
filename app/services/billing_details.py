"""Invoice Address and Invoice Notifications (seed 003): who invoices are made out to and where
they are emailed. The address is also set on the Stripe customer. Callers commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session

from app.errors import FormInvalid, ValidationFailed
from app.models import Account, BillingSettings, utcnow
from app.payments import gateway
from app.services import audit
from app.services.address import (
    FIELDS,
    Address,
    address_from,
    region_code,
    store_address,
    stored_address,
    validate_address,
)
from app.services.customers import account_id_of, ensure_customer
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require

# The Invoice Address form's names for the address fields (errors are keyed by them too).
FORM_NAMES = {**{name: name for name in FIELDS}, "line1": "address1", "line2": "address2"}
MAX_LENGTHS = {"company_name": 200, "po_number": 100}


@dataclass(frozen=True)
class InvoiceAddress(Address):
    company_name: str = ""
    po_number: str = ""


def invoice_address(session: Session, actor: Actor) -> InvoiceAddress:
    require(actor, Permission.BILLING_VIEW)
    return address_of(billing_settings(session, actor.account_id))


def address_of(settings: BillingSettings) -> InvoiceAddress:
    return InvoiceAddress(
        **asdict(stored_address(settings)),
        company_name=settings.invoice_company_name,
        po_number=settings.invoice_po_number,
    )


def check_address(form: Mapping[str, object]) -> InvoiceAddress:
    """The form's address, trimmed and normalized, or FormInvalid with every field's error."""
    text = {name: " ".join(str(form.get(name) or "").split()) for name in MAX_LENGTHS}
    errors = {} if text["company_name"] else {"company_name": "Enter the company name."}
    for name, limit in MAX_LENGTHS.items():
        if len(text[name]) > limit:
            errors.setdefault(name, f"Use at most {limit} characters.")
    try:
        address = validate_address(address_from(form, FORM_NAMES), required=True, names=FORM_NAMES)
    except FormInvalid as exc:
        errors.update(exc.errors)
    if errors:
        raise FormInvalid(errors)
    return InvoiceAddress(**asdict(address), **text)


def store_invoice_address(settings: BillingSettings, address: InvoiceAddress) -> None:
    store_address(settings, address)
    settings.invoice_company_name, settings.invoice_po_number = address.company_name, address.po_number


def save_address(session: Session, actor: Actor, form: Mapping[str, object]) -> InvoiceAddress:
    """Store the invoice address and set it on the Stripe customer. Bad input raises
    FormInvalid and stores nothing; when Stripe refuses or cannot be reached, the caller's
    transaction rolls back, so our copy never differs from Stripe's."""
    require(actor, Permission.BILLING_MANAGE)
    address = check_address(form)
    settings = billing_settings(session, actor.account_id)
    store_invoice_address(settings, address)
    settings.updated_at = utcnow()
    session.add(settings)
    session.flush()
    push_address_to_stripe(session, session.get_one(Account, actor.account_id))
    audit.record(session, actor, "billing.address", f"Changed the invoice address ({address.city}, {address.country})")
    return address


def push_address_to_stripe(session: Session, account: Account) -> None:
    """Raises gateway.PaymentProviderError when Stripe refuses or cannot be reached."""
    settings = billing_settings(session, account_id_of(account))
    address = address_of(settings)
    customer_id = ensure_customer(session, account)
    region = region_code(address.country, address.region)
    gateway.update_customer_address(
        customer_id,
        name=address.company_name or account.name,
        address={
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "postal_code": address.postal_code,
            "state": region,
            "country": address.country,
        },
    )


def address_lines(settings: BillingSettings, account_name: str) -> list[str]:
    """The invoice address as printed: the company, then the address (`Address.lines`)."""
    address = address_of(settings)
    return [address.company_name or account_name, *address.lines()]


def billing_email(session: Session, actor: Actor) -> str:
    require(actor, Permission.BILLING_VIEW)
    return billing_settings(session, actor.account_id).billing_email


def save_billing_email(session: Session, actor: Actor, email: str) -> str:
    """Store the address invoices are emailed to, normalized (email-validator, no DNS lookup)."""
    require(actor, Permission.BILLING_MANAGE)
    text = (email or "").strip()
    if not text:
        raise ValidationFailed("Enter an email address.", field="email")
    try:
        normalized = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed(f"Enter a valid email address: {exc}", field="email") from None
    if len(normalized) > 320:
        raise ValidationFailed("Use at most 320 characters.", field="email")
    settings = billing_settings(session, actor.account_id)
    settings.billing_email = normalized
    settings.updated_at = utcnow()
    session.add(settings)
    session.flush()
    audit.record(session, actor, "billing.email", f"Set the invoice billing email to {normalized}")
    return normalized
