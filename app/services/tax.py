"""Tax Settings (seed 003): the customer's tax registrations. A number is checked with
python-stdnum for its country and type and stored normalized; Stripe (the customer's tax IDs)
verifies it, and its `customer.tax_id.updated` events keep the status current. Callers commit."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select
from stdnum.exceptions import ValidationError as NumberInvalid
from stdnum.util import clean

from app.errors import Conflict, FormInvalid, NotFound
from app.models import TaxRegistration, utcnow
from app.payments import gateway
from app.services import audit
from app.services.address import country_name
from app.services.customers import account_with_customer, customer_for
from app.services.permissions import Actor, Permission, require

log = logging.getLogger("ledgerdesk.tax")

# EU member states and the prefix of their VAT numbers (Greece: EL).
EU_VAT_PREFIXES = {
    "AT": "AT", "BE": "BE", "BG": "BG", "CY": "CY", "CZ": "CZ", "DE": "DE", "DK": "DK", "EE": "EE",
    "ES": "ES", "FI": "FI", "FR": "FR", "GR": "EL", "HR": "HR", "HU": "HU", "IE": "IE", "IT": "IT",
    "LT": "LT", "LU": "LU", "LV": "LV", "MT": "MT", "NL": "NL", "PL": "PL", "PT": "PT", "RO": "RO",
    "SE": "SE", "SI": "SI", "SK": "SK",
}  # fmt: skip


@dataclass(frozen=True)
class TaxType:
    """A Stripe tax ID type, the python-stdnum module that checks it, and how Stripe writes it."""

    code: str
    description: str
    module: str
    # compact | format | prefix (compact with the country code in front, as Stripe wants it)
    style: str = "compact"
    example: str = ""


EU_VAT = TaxType("eu_vat", "European VAT number", "stdnum.eu.vat")
TYPES_BY_COUNTRY: dict[str, tuple[TaxType, ...]] = {
    **{country: (EU_VAT,) for country in EU_VAT_PREFIXES},
    "ES": (EU_VAT, TaxType("es_cif", "Spanish NIF number", "stdnum.es.cif", "compact", "A13585625")),
    "GB": (TaxType("gb_vat", "United Kingdom VAT number", "stdnum.gb.vat", "prefix", "GB980780684"),),
    "CH": (TaxType("ch_vat", "Switzerland VAT number", "stdnum.ch.vat", "format", "CHE-100.155.212 MWST"),),
    "NO": (TaxType("no_vat", "Norwegian VAT number", "stdnum.no.mva", "compact", "995525828MVA"),),
    "AU": (TaxType("au_abn", "Australian Business Number (AU ABN)", "stdnum.au.abn", "compact", "51824753556"),),
    "NZ": (TaxType("nz_gst", "New Zealand GST number", "stdnum.nz.ird", "compact", "49091850"),),
    "US": (TaxType("us_ein", "United States EIN", "stdnum.us.ein", "format", "04-2103594"),),
    "CA": (TaxType("ca_bn", "Canadian BN", "stdnum.ca.bn", "compact", "123456782"),),
    "IN": (TaxType("in_gst", "Indian GST number", "stdnum.in_.gstin", "compact", "27AAPFU0939F1ZV"),),
    "BR": (TaxType("br_cnpj", "Brazilian CNPJ number", "stdnum.br.cnpj", "format", "00.000.000/0001-91"),),
}
DESCRIPTIONS = {t.code: t.description for types in TYPES_BY_COUNTRY.values() for t in types}
STATUS_HINTS = {
    "pending": "Stripe is still verifying this number.",
    "unavailable": "The tax authority's service could not be reached; Stripe will try again.",
    "unverified": "The tax authority did not confirm this number.",
}


@dataclass(frozen=True)
class RegistrationRow:
    """One registration as Tax Settings shows it; `label` is how an invoice prints it."""

    id: str
    country: str
    description: str
    value: str
    label: str
    verified: bool
    # Why it is not verified (yet).
    hint: str


@dataclass(frozen=True)
class TaxView:
    rows: list[RegistrationRow]
    can_manage: bool


def countries() -> list[tuple[str, str]]:
    """(code, name) of the countries whose tax IDs can be registered, by name."""
    return sorted(((code, country_name(code)) for code in TYPES_BY_COUNTRY), key=lambda row: row[1])


def types_for(country: str) -> tuple[TaxType, ...]:
    return TYPES_BY_COUNTRY.get(country, ())


def type_options(country: str) -> list[list[str]]:
    """[code, description] of the tax ID types of a country."""
    return [[t.code, t.description] for t in types_for(country)]


def describe(tax_type: str) -> str:
    """ "European VAT number"."""
    return DESCRIPTIONS.get(tax_type, tax_type)


def label(registration: TaxRegistration) -> str:
    """How an invoice prints a registration: "European VAT number DE136695976"."""
    return f"{describe(registration.type)} {registration.value}"


def normalize(country: str, tax_type: str, value: str) -> str:
    """The number checked for the country and type and written the way Stripe expects it, or
    FormInvalid naming the field at fault."""
    errors: dict[str, str] = {}
    if country not in TYPES_BY_COUNTRY:
        errors["country"] = "Select a country from the list."
    kind = next((t for t in types_for(country) if t.code == tax_type), None)
    if kind is None and "country" not in errors:
        errors["type"] = "Select a tax ID type offered for this country."
    text = (value or "").strip()
    if not text:
        errors["value"] = "Enter the tax ID."
    if errors or kind is None:
        raise FormInvalid(errors)
    module = importlib.import_module(kind.module)
    try:
        if kind.code == "eu_vat":
            return _eu_vat(module, country, text)
        number = module.validate(text)
    except NumberInvalid as exc:
        raise FormInvalid({"value": _invalid(kind, country, exc)}) from None
    if kind.style == "format":
        return module.format(number)
    if kind.style == "prefix":
        return country + number
    return number


def _eu_vat(module: Any, country: str, text: str) -> str:
    prefix = EU_VAT_PREFIXES[country]
    number = clean(text, " -./,").upper()
    if not number[:2].isalpha():
        number = prefix + number
    if number[:2] != prefix:
        raise FormInvalid({"value": f"A VAT number of {country_name(country)} starts with {prefix}."})
    return module.validate(number)


def _invalid(kind: TaxType, country: str, exc: NumberInvalid) -> str:
    reason = str(exc).rstrip(".").lower()
    example = f", such as {kind.example}" if kind.example else ""
    # "European VAT number" needs its country; the others name theirs.
    what = f"{kind.description} of {country_name(country)}" if kind is EU_VAT else kind.description
    return f"This is not a valid {what} ({reason}){example}."


def registrations(session: Session, actor: Actor) -> list[TaxRegistration]:
    """The account's registrations, oldest first."""
    require(actor, Permission.BILLING_VIEW)
    return _registrations(session, actor.account_id)


def _registrations(session: Session, account_id: int) -> list[TaxRegistration]:
    return list(
        session.exec(
            select(TaxRegistration)
            .where(TaxRegistration.account_id == account_id)
            .order_by(col(TaxRegistration.created_at), col(TaxRegistration.id))
        )
    )


def tax_view(session: Session, actor: Actor) -> TaxView:
    rows = [
        RegistrationRow(
            id=row.public_id,
            country=country_name(row.country),
            description=describe(row.type),
            value=row.value,
            label=label(row),
            verified=row.status == "verified",
            hint=STATUS_HINTS.get(row.status, ""),
        )
        for row in registrations(session, actor)
    ]
    return TaxView(rows, actor.can(Permission.BILLING_MANAGE))


def add_registration(session: Session, actor: Actor, *, country: str, tax_type: str, value: str) -> TaxRegistration:
    """Check the number, add it to the Stripe customer and store it with Stripe's verification
    status. A number already on file, or one Stripe refuses, is refused and nothing is stored."""
    require(actor, Permission.BILLING_MANAGE)
    try:
        registration = register(session, actor.account_id, country=country, tax_type=tax_type, value=value)
    except gateway.PaymentProviderError as exc:
        raise FormInvalid({"value": f"Stripe did not accept this tax ID: {exc.message}"}) from None
    audit.record(session, actor, "tax.add", f"Added the tax ID {registration.value}")
    return registration


def register(session: Session, account_id: int, *, country: str, tax_type: str, value: str) -> TaxRegistration:
    """add_registration without the permission check (demo data); Stripe's refusal or absence
    raises gateway.PaymentProviderError."""
    normalized = normalize(country, tax_type, value)
    if find(session, account_id, tax_type, normalized) is not None:
        raise FormInvalid({"value": "This tax ID is already registered."})
    customer_id = customer_for(session, account_id)
    stripe_tax_id = gateway.create_tax_id(
        customer_id,
        type=tax_type,
        value=normalized,
        idempotency_key=f"tax_id:{account_id}:{tax_type}:{normalized}",
    )
    registration = TaxRegistration(
        account_id=account_id,
        country=country,
        type=tax_type,
        value=normalized,
        status=stripe_tax_id.status,
        stripe_tax_id=stripe_tax_id.id,
    )
    session.add(registration)
    session.flush()
    return registration


def find(session: Session, account_id: int, tax_type: str, normalized: str) -> TaxRegistration | None:
    return session.exec(
        select(TaxRegistration).where(
            TaxRegistration.account_id == account_id,
            TaxRegistration.type == tax_type,
            TaxRegistration.value == normalized,
        )
    ).first()


def remove_registration(session: Session, actor: Actor, registration_id: str) -> TaxRegistration:
    """Remove a registration here and from the Stripe customer."""
    require(actor, Permission.BILLING_MANAGE)
    registration = session.exec(
        select(TaxRegistration).where(
            TaxRegistration.account_id == actor.account_id, TaxRegistration.public_id == registration_id
        )
    ).first()
    if registration is None:
        raise NotFound("That tax registration is not on file.")
    if registration.stripe_tax_id:
        customer_id = customer_for(session, actor.account_id)
        try:
            gateway.delete_tax_id(customer_id, registration.stripe_tax_id)
        except gateway.PaymentProviderError as exc:
            raise Conflict(f"Stripe could not remove this tax ID, so it is kept: {exc.message}") from None
    session.delete(registration)
    session.flush()
    audit.record(session, actor, "tax.remove", f"Removed the tax ID {registration.value}")
    return registration


def apply_stripe_tax_id(session: Session, tax_id: dict[str, Any], *, deleted: bool = False) -> None:
    """A `customer.tax_id.updated` (or `.deleted`) event: take Stripe's verification status, or
    drop a registration removed in Stripe."""
    account_id = account_with_customer(session, gateway.id_of(tax_id.get("customer")))
    registration = None
    if account_id is not None:
        registration = session.exec(
            select(TaxRegistration).where(
                TaxRegistration.account_id == account_id, TaxRegistration.stripe_tax_id == tax_id["id"]
            )
        ).first()
    if registration is None:
        log.warning("stripe tax id %s matches no registration of ours", tax_id["id"])
        return
    if deleted:
        session.delete(registration)
    else:
        registration.status = (tax_id.get("verification") or {}).get("status") or registration.status
        registration.updated_at = utcnow()
        session.add(registration)
    session.flush()


def printed(session: Session, account_id: int) -> list[str]:
    """The registrations as an invoice prints them, oldest first."""
    return [label(row) for row in _registrations(session, account_id)]
