"""One postal address and one validator, for the Company page and the Invoice Address page (they
edit the same stored fields: the company address is the address printed on invoices).

Countries and their regions come from pycountry, postal codes are checked per country. A form
names the fields as it likes (`names`, e.g. "address1" for "line1"): errors are keyed by those
names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cache, lru_cache

import pycountry

from app.errors import FormInvalid
from app.models import BillingSettings

FIELDS = ("line1", "line2", "city", "postal_code", "region", "country")
MAX_LENGTHS = {"line1": 200, "line2": 200, "city": 100, "postal_code": 20, "region": 100}
# Where an address is not deliverable without its state or province.
REGION_REQUIRED = frozenset({"US", "CA", "AU"})
# Countries whose addresses have no postal code.
NO_POSTAL_CODE = frozenset({
    "AE", "AG", "AO", "AW", "BF", "BI", "BJ", "BO", "BS", "BW", "BZ", "CD", "CF", "CG", "CI", "CK", "CM", "DJ", "DM", "ER",
    "FJ", "GA", "GD", "GH", "GM", "GQ", "GY", "HK", "JM", "KI", "KM", "KN", "KP", "LC", "ML", "MO", "MR", "MW", "NR", "NU",
    "QA", "RW", "SB", "SC", "SL", "SR", "ST", "SY", "TD", "TF", "TG", "TK", "TL", "TO", "TT", "TV", "UG", "VU", "YE", "ZW",
})  # fmt: skip
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
# What a missing field is called in "Enter the street address."
_REQUIRED = {"line1": "the street address", "city": "the city"}


@cache
def country_options() -> tuple[tuple[str, str], ...]:
    """(ISO 3166 alpha-2 code, English name) of every country, by name."""
    rows = ((c.alpha_2, getattr(c, "common_name", None) or c.name) for c in pycountry.countries)
    return tuple(sorted(rows, key=lambda row: row[1]))


def country_name(code: str) -> str:
    return dict(country_options()).get(code, code)


@lru_cache(maxsize=300)
def regions(country: str) -> tuple[tuple[str, str], ...]:
    """(code, name) of the country's top-level subdivisions, by name; empty when it has none."""
    if not country:
        return ()
    found = pycountry.subdivisions.get(country_code=country) or []
    # "Wales [Cymru GB-CYM]" -> "Wales"
    rows = {(s.code, s.name.split(" [", 1)[0]) for s in found if s.parent_code is None}
    return tuple(sorted(rows, key=lambda row: row[1]))


def region_names(country: str) -> list[str]:
    return [name for _, name in regions(country)]


def _canonical_region(country: str, region: str) -> str | None:
    return next((name for _, name in regions(country) if name.casefold() == region.casefold()), None)


def region_code(country: str, region: str) -> str:
    """ "CA" for California: the subdivision code without the country, as Stripe and US
    addresses write it; the text itself when it names no subdivision."""
    code = next((code for code, name in regions(country) if name.casefold() == region.casefold()), "")
    return code.split("-", 1)[1] if code else region


@dataclass(frozen=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    postal_code: str = ""
    # The name of one of the country's subdivisions ("California") where it has them, else text.
    region: str = ""
    country: str = ""

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in FIELDS)

    def lines(self) -> list[str]:
        """The address as printed, in the order of the country's postal convention (US, Canada,
        Australia: "City, ST 12345"); empty lines left out."""
        region = self.region
        if self.country in REGION_REQUIRED:
            city_line = f"{self.city}, {region_code(self.country, region)} {self.postal_code}".strip(", ")
            region = ""
        else:
            city_line = " ".join(p for p in (self.postal_code, self.city) if p)
        lines = [
            self.line1,
            self.line2,
            city_line,
            # A city-state (Berlin, Hamburg) need not be named twice.
            region if region.casefold() != self.city.casefold() else "",
            country_name(self.country) if self.country else "",
        ]
        return [line for line in lines if line]


def address_from(form: Mapping[str, object], names: Mapping[str, str] | None = None) -> Address:
    """The address in a submitted form whose controls are called `names[field]`."""
    return Address(**{name: str(form.get((names or {}).get(name, name)) or "") for name in FIELDS})


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
    if not region:
        return "Select a region or province." if country in REGION_REQUIRED else ""
    if regions(country) and _canonical_region(country, region) is None:
        return f"Select a region or province of {country_name(country)}."
    return ""


def validate_address(address: Address, *, required: bool, names: Mapping[str, str] | None = None) -> Address:
    """The address trimmed and normalized (country and postal code upper case, the region as its
    country names it), or FormInvalid with every field's error, keyed by `names`. An address that
    is not `required` may be left wholly empty."""
    values = {field.name: " ".join(getattr(address, field.name).split()) for field in fields(Address)}
    values["country"], values["postal_code"] = values["country"].upper(), values["postal_code"].upper()
    clean = Address(**values)
    if not required and clean.is_empty():
        return clean
    errors: dict[str, str] = {}
    hint = "." if required else ", or clear the whole address."
    for name, what in _REQUIRED.items():
        if not values[name]:
            errors[name] = f"Enter {what}{hint}"
    for name, limit in MAX_LENGTHS.items():
        if len(values[name]) > limit:
            errors.setdefault(name, f"Use at most {limit} characters.")
    country = values["country"]
    if not country:
        errors["country"] = "Select a country." if required else f"Enter the country{hint}"
    elif country not in dict(country_options()):
        errors["country"] = "Select a country from the list."
    else:
        if message := postal_code_error(country, values["postal_code"]):
            errors.setdefault("postal_code", message)
        if message := region_error(country, values["region"]):
            errors.setdefault("region", message)
        elif values["region"]:
            clean = replace(clean, region=_canonical_region(country, values["region"]) or values["region"])
    if errors:
        raise FormInvalid({(names or {}).get(name, name): message for name, message in errors.items()})
    return clean


def stored_address(settings: BillingSettings) -> Address:
    """The address kept in the account's billing settings (there is one per account)."""
    return Address(
        line1=settings.invoice_address1,
        line2=settings.invoice_address2,
        city=settings.invoice_city,
        postal_code=settings.invoice_postal_code,
        region=settings.invoice_region,
        country=settings.invoice_country,
    )


def store_address(settings: BillingSettings, address: Address) -> None:
    settings.invoice_address1, settings.invoice_address2 = address.line1, address.line2
    settings.invoice_city, settings.invoice_postal_code = address.city, address.postal_code
    settings.invoice_region, settings.invoice_country = address.region, address.country
