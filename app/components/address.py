"""The one address form of the console (Company, Invoice Address): street, city, postal code,
region (a list where the country has subdivisions) and country, in seed 003's order, each with its error. The
page's state mixes in `AddressFormState`; `names` are the form's names of the address fields."""

from __future__ import annotations

from collections.abc import Mapping

import reflex as rx

from app.components.forms import SELECT_STYLE, error_of, field, field_pair, select, text_field
from app.services.address import country_options


def address_fields(state, names: Mapping[str, str], *, disabled: rx.Var | bool = False) -> rx.Component:
    def _input(label: str, part: str, auto_complete: str) -> rx.Component:
        return text_field(
            label,
            field_id=names[part],
            default_value=state.address.get(part, ""),
            error=error_of(state, names[part]),
            disabled=disabled,
            auto_complete=auto_complete,
        )

    country, region = names["country"], names["region"]
    return rx.fragment(
        _input("Address 1", "line1", "address-line1"),
        _input("Address 2", "line2", "address-line2"),
        field_pair(_input("City", "city", "address-level2"), _input("Postal code", "postal_code", "postal-code")),
        # Seed 003's order: Region/Province, then Country.
        field_pair(
            field(
                "Region/Province",
                rx.cond(
                    state.region_options.length() > 0,
                    rx.el.select(
                        rx.el.option("Select a region or province", value=""),
                        rx.foreach(state.region_options, lambda name: rx.el.option(name, value=name)),
                        id=region,
                        name=region,
                        default_value=state.address.get("region", ""),
                        disabled=disabled,
                        style=SELECT_STYLE,
                    ),
                    rx.input(
                        id=region,
                        name=region,
                        default_value=state.address.get("region", ""),
                        disabled=disabled,
                        auto_complete="address-level1",
                        width="100%",
                    ),
                ),
                field_id=region,
                error=error_of(state, region),
            ),
            field(
                "Country",
                select(
                    country,
                    country_options(),
                    default_value=state.address.get("country", ""),
                    empty="Select a country",
                    on_change=state.choose_country,
                    disabled=disabled,
                    auto_complete="country",
                ),
                field_id=country,
                error=error_of(state, country),
            ),
        ),
    )
