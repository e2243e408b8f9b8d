"""The address fields of a form (Company, Invoice Address), mixed into its state: the saved
address the inputs start from, and the regions of the chosen country. Drawn by
`app.components.address.address_fields`."""

from __future__ import annotations

import reflex as rx

from app.services.address import FIELDS, Address, country_options, region_names

# Computed once, so that choosing a country is answered without calling a service.
REGIONS = {code: region_names(code) for code, _ in country_options()}


class AddressFormState(rx.State, mixin=True):
    address: rx.Field[dict[str, str]] = rx.field(default_factory=dict)
    region_options: rx.Field[list[str]] = rx.field(default_factory=list)

    def _show_address(self, address: Address) -> None:
        self.address = {name: getattr(address, name) for name in FIELDS}
        self.region_options = REGIONS.get(address.country, [])

    @rx.event
    def choose_country(self, code: str):
        self.region_options = REGIONS.get(code, [])
