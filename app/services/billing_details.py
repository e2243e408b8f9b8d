"""Invoice Address and Invoice Notifications (seed 003): who invoices are made out to and where
they are emailed. The address is also set on the Stripe customer. Callers commit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pycountry
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session

from app.errors import FormInvalid, ValidationFailed
from app.models import Account, BillingSettings, utcnow
from app.payments import gateway
from app.services import audit
from app.services.customers import ensure_customer
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require

ADDRESS_FIELDS = ("company_name", "address1", "address2", "city", "postal_code", "region", "country", "po_number")
MAX_LENGTHS = {
    "company_name": 200,
    "address1": 200,
    "address2": 200,
    "city": 100,
    "postal_code": 20,
    "region": 100,
    "po_number": 100,
}
REQUIRED = {
    "company_name": "Enter the company name.",
    "address1": "Enter the street address.",
    "city": "Enter the city.",
}
# Where an address is not deliverable without its state or province.
REGION_REQUIRED = frozenset({"US", "CA", "AU"})
# Countries whose addresses have no postal code.
NO_POSTAL_CODE = frozenset(
    [
        "AE",
        "AG",
        "AO",
        "AW",
        "BF",
        "BI",
        "BJ",
        "BO",
        "BS",
        "BW",
        "BZ",
        "CD",
        "CF",
        "CG",
        "CI",
        "CK",
        "CM",
        "DJ",
        "DM",
        "ER",
        "FJ",
        "GA",
        "GD",
        "GH",
        "GM",
        "GQ",
        "GY",
        "HK",
        "JM",
        "KI",
        "KM",
        "KN",
        "KP",
        "LC",
        "ML",
        "MO",
        "MR",
        "MW",
        "NR",
        "NU",
        "QA",
        "RW",
        "SB",
        "SC",
        "SL",
        "SR",
        "ST",
        "SY",
        "TD",
        "TF",
        "TG",
        "TK",
        "TL",
        "TO",
        "TT",
        "TV",
        "UG",
        "VU",
        "YE",
        "ZW",
    ]
)
POSTAL_PATTERNS = {
    "US": (r"\d{5}(-\d{4})?", "12345 or 12345-6789"),
    "CA": (r"[A-Z]\d[A-Z] ?\d[A-Z]\d", "K1A 0B1"),
    "GB": (r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", "SW1A 1AA"),
    "DE": (r"\d{5}", "10115"),
    "FR": (r"\d{5}", "75001"),
    "IT": (r"\d{5}", "00118"),
    "ES": (r"\d{5}", "28001"),
    "NL": (r"\d{4} ?[A-Z]{2}", "1012 AB"),
    "BE": (r"\d{4}", "1000"),
    "AT": (r"\d{4}", "1010"),
    "CH": (r"\d{4}", "8001"),
    "DK": (r"\d{4}", "1050"),
    "NO": (r"\d{4}", "0150"),
    "SE": (r"\d{3} ?\d{2}", "111 22"),
    "FI": (r"\d{5}", "00100"),
    "PL": (r"\d{2}-\d{3}", "00-001"),
    "PT": (r"\d{4}-\d{3}", "1000-001"),
    "IE": (r"[A-Z]\d[\dW] ?[A-Z\d]{4}", "D02 X285"),
    "AU": (r"\d{4}", "2000"),
    "NZ": (r"\d{4}", "6011"),
    "JP": (r"\d{3}-?\d{4}", "100-0001"),
    "IN": (r"\d{6}", "110001"),
    "BR": (r"\d{5}-?\d{3}", "01000-000"),
}
GENERIC_POSTAL = re.compile(r"[A-Z0-9][A-Z0-9 -]{1,9}")


@dataclass(frozen=True)
class InvoiceAddress:
    company_name: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    postal_code: str = ""
    # The name of one of the country's subdivisions ("California") where it has them. The
    # Company page edits the same fields with free text, so names (not codes) are stored.
    region: str = ""
    country: str = ""
    po_number: str = ""


@lru_cache(maxsize=1)
def countries() -> tuple[tuple[str, str], ...]:
    """(ISO code, name) of every country, by name."""
    rows = ((c.alpha_2, getattr(c, "common_name", None) or c.name) for c in pycountry.countries)
    return tuple(sorted(rows, key=lambda row: row[1]))


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code) if code else None
    return (getattr(country, "common_name", None) or country.name) if country else code


@lru_cache(maxsize=300)
def regions(country: str) -> tuple[tuple[str, str], ...]:
    """(code, name) of the country's top-level subdivisions, by name; empty when it has none."""
    if not country:
        return ()
    found = pycountry.subdivisions.get(country_code=country) or []
    rows = {(s.code, _clean(s.name)) for s in found if s.parent_code is None}
    return tuple(sorted(rows, key=lambda row: row[1]))


def _clean(name: str) -> str:
    # "Wales [Cymru GB-CYM]" -> "Wales"
    return name.split(" [", 1)[0]


def region_code(country: str, region: str) -> str:
    """ "CA" for California: the subdivision code without the country, as Stripe and US
    addresses write it; the text itself when it names no subdivision."""
    code = next((code for code, name in regions(country) if name.casefold() == region.casefold()), "")
    return code.split("-", 1)[1] if code else region


def _canonical_region(country: str, region: str) -> str | None:
    return next((name for _, name in regions(country) if name.casefold() == region.casefold()), None)


def invoice_address(session: Session, actor: Actor) -> InvoiceAddress:
    require(actor, Permission.BILLING_VIEW)
    return address_of(billing_settings(session, actor.account_id))


def address_of(settings: BillingSettings) -> InvoiceAddress:
    return InvoiceAddress(
        company_name=settings.invoice_company_name,
        address1=settings.invoice_address1,
        address2=settings.invoice_address2,
        city=settings.invoice_city,
        postal_code=settings.invoice_postal_code,
        region=settings.invoice_region,
        country=settings.invoice_country,
        po_number=settings.invoice_po_number,
    )


def check_address(form: dict[str, str]) -> InvoiceAddress:
    """The form's address, trimmed and normalized, or FormInvalid with every field's error."""
    values = {name: " ".join(str(form.get(name) or "").split()) for name in ADDRESS_FIELDS}
    values["country"] = values["country"].upper()
    values["postal_code"] = values["postal_code"].upper()
    errors: dict[str, str] = {}
    for name, message in REQUIRED.items():
        if not values[name]:
            errors[name] = message
    for name, limit in MAX_LENGTHS.items():
        if len(values[name]) > limit:
            errors.setdefault(name, f"Use at most {limit} characters.")
    country = values["country"]
    if not country:
        errors["country"] = "Select a country."
    elif pycountry.countries.get(alpha_2=country) is None:
        errors["country"] = "Select a country from the list."
    else:
        if message := postal_code_error(country, values["postal_code"]):
            errors.setdefault("postal_code", message)
        if message := region_error(country, values["region"]):
            errors.setdefault("region", message)
        elif values["region"]:
            values["region"] = _canonical_region(country, values["region"]) or values["region"]
    if errors:
        raise FormInvalid(errors)
    return InvoiceAddress(**values)


def postal_code_error(country: str, postal_code: str) -> str:
    if not postal_code:
        return "" if country in NO_POSTAL_CODE else "Enter the postal code."
    pattern, example = POSTAL_PATTERNS.get(country, (None, ""))
    if pattern is not None:
        if not re.fullmatch(pattern, postal_code):
            return f"Enter a postal code of {country_name(country)}, such as {example}."
    elif not GENERIC_POSTAL.fullmatch(postal_code):
        return "Enter a postal code of 2 to 10 letters and digits."
    return ""


def region_error(country: str, region: str) -> str:
    options = regions(country)
    if not region:
        return "Select a region or province." if country in REGION_REQUIRED else ""
    if options and _canonical_region(country, region) is None:
        return f"Select a region or province of {country_name(country)}."
    return ""


def save_address(session: Session, actor: Actor, form: dict[str, str]) -> InvoiceAddress:
    """Store the invoice address and set it on the Stripe customer. Bad input raises
    FormInvalid and stores nothing; when Stripe refuses or cannot be reached, the caller's
    transaction rolls back, so our copy never differs from Stripe's."""
    require(actor, Permission.BILLING_MANAGE)
    address = check_address(form)
    settings = billing_settings(session, actor.account_id)
    settings.invoice_company_name = address.company_name
    settings.invoice_address1 = address.address1
    settings.invoice_address2 = address.address2
    settings.invoice_city = address.city
    settings.invoice_postal_code = address.postal_code
    settings.invoice_region = address.region
    settings.invoice_country = address.country
    settings.invoice_po_number = address.po_number
    settings.updated_at = utcnow()
    session.add(settings)
    session.flush()
    push_address_to_stripe(session, session.get(Account, actor.account_id))
    audit.record(session, actor, "billing.address", f"Changed the invoice address ({address.city}, {address.country})")
    return address


def push_address_to_stripe(session: Session, account: Account) -> None:
    """Raises gateway.PaymentProviderError when Stripe refuses or cannot be reached."""
    settings = billing_settings(session, account.id)
    address = address_of(settings)
    customer_id = ensure_customer(session, account)
    region = region_code(address.country, address.region)
    gateway.update_customer_address(
        customer_id,
        name=address.company_name or account.name,
        address={
            "line1": address.address1,
            "line2": address.address2,
            "city": address.city,
            "postal_code": address.postal_code,
            "state": region,
            "country": address.country,
        },
    )


def address_lines(settings: BillingSettings, account_name: str) -> list[str]:
    """The invoice address as printed: company, street, city line, region, country, in the
    order of the country's postal convention (US, Canada, Australia: "City, ST 12345")."""
    address = address_of(settings)
    region = address.region
    if address.country in REGION_REQUIRED:
        city_line = f"{address.city}, {region_code(address.country, region)} {address.postal_code}".strip(", ")
        region = ""
    else:
        city_line = " ".join(p for p in (address.postal_code, address.city) if p)
    lines = [
        address.company_name or account_name,
        address.address1,
        address.address2,
        city_line,
        # A city-state (Berlin, Hamburg) need not be named twice.
        region if region.casefold() != address.city.casefold() else "",
        country_name(address.country) if address.country else "",
    ]
    return [line for line in lines if line]


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
