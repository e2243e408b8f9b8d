"""Invoice Address (seed 003): who invoices are made out to, and the purchase order number."""

from __future__ import annotations

import reflex as rx

from app.components.forms import field, form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.db import transaction
from app.errors import DomainError, FormInvalid
from app.services import billing_details
from app.services.permissions import Permission
from app.state.session import current_actor

FIELDS = billing_details.ADDRESS_FIELDS
COUNTRIES = billing_details.countries()
# Computed once, so that choosing a country is answered without calling a service.
REGIONS = {code: [name for _, name in billing_details.regions(code)] for code, _ in COUNTRIES}
SELECT_STYLE = {
    "height": "var(--space-6)",
    "padding": "0 var(--space-2)",
    "border": "1px solid var(--gray-a7)",
    "border_radius": "var(--radius-2)",
    "background": "var(--color-surface)",
    "color": "var(--gray-12)",
    "font_size": "var(--font-size-2)",
    "width": "100%",
}


class InvoiceAddressState(rx.State):
    company_name: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    postal_code: str = ""
    region: str = ""
    country: str = ""
    po_number: str = ""
    region_options: list[str] = []
    company_name_error: str = ""
    address1_error: str = ""
    address2_error: str = ""
    city_error: str = ""
    postal_code_error: str = ""
    region_error: str = ""
    country_error: str = ""
    po_number_error: str = ""
    can_manage: bool = False
    error: str = ""
    notice: str = ""
    saving: bool = False

    def _clear_messages(self) -> None:
        for name in FIELDS:
            setattr(self, f"{name}_error", "")
        self.error = self.notice = ""

    def _show(self, address: billing_details.InvoiceAddress) -> None:
        for name in FIELDS:
            setattr(self, name, getattr(address, name))
        self._region_options()

    def _region_options(self) -> None:
        self.region_options = REGIONS.get(self.country, [])

    @rx.event
    def load(self):
        self._clear_messages()
        self.saving = False
        try:
            actor = current_actor(self, Permission.BILLING_VIEW)
            with transaction() as session:
                self._show(billing_details.invoice_address(session, actor))
        except DomainError as exc:
            self.error = exc.message
            return
        self.can_manage = actor.can(Permission.BILLING_MANAGE)

    @rx.event
    def set_field(self, name: str, value: str):
        if name in FIELDS:
            setattr(self, name, value)
        if name == "country":
            self._region_options()
            if self.region_options and self.region not in self.region_options:
                self.region = ""

    @rx.event
    def save(self, _form_data: dict):
        self._clear_messages()
        self.saving = True
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                address = billing_details.save_address(session, actor, {name: getattr(self, name) for name in FIELDS})
            self._show(address)
        except FormInvalid as exc:
            for name, message in exc.errors.items():
                setattr(self, f"{name}_error", message)
        except DomainError as exc:
            self.error = exc.message
        else:
            self.notice = "Your invoice address is saved."
        self.saving = False


def _input(label: str, name: str, **props) -> rx.Component:
    state = InvoiceAddressState
    return text_field(
        label,
        field_id=name,
        value=getattr(state, name),
        on_change=lambda value: state.set_field(name, value),
        error=getattr(state, f"{name}_error"),
        disabled=~state.can_manage,
        **props,
    )


def _country() -> rx.Component:
    state = InvoiceAddressState
    return field(
        "Country",
        rx.el.select(
            rx.el.option("Select a country", value=""),
            *[rx.el.option(name, value=code) for code, name in COUNTRIES],
            id="country",
            name="country",
            value=state.country,
            on_change=lambda value: state.set_field("country", value),
            disabled=~state.can_manage,
            auto_complete="country",
            style=SELECT_STYLE,
        ),
        field_id="country",
        error=state.country_error,
    )


def _region() -> rx.Component:
    state = InvoiceAddressState
    return field(
        "Region/Province",
        rx.cond(
            state.region_options.length() > 0,
            rx.el.select(
                rx.el.option("Select a region or province", value=""),
                rx.foreach(state.region_options, lambda name: rx.el.option(name, value=name)),
                id="region",
                name="region",
                value=state.region,
                on_change=lambda value: state.set_field("region", value),
                disabled=~state.can_manage,
                style=SELECT_STYLE,
            ),
            rx.input(
                id="region",
                name="region",
                value=state.region,
                on_change=lambda value: state.set_field("region", value),
                disabled=~state.can_manage,
                auto_complete="address-level1",
                width="100%",
            ),
        ),
        field_id="region",
        error=state.region_error,
    )


@console_page(
    route="/billing/invoice-address",
    title="Invoice Address",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    nav_label="Invoice Address",
    order=160,
    on_load=[InvoiceAddressState.load],
)
def invoice_address_page() -> rx.Component:
    state = InvoiceAddressState
    return rx.vstack(
        page_heading("Invoice Address", "The address your invoices are made out to. Stripe gets it too."),
        form_notice(state.notice),
        form_error(state.error),
        rx.card(
            rx.form(
                rx.vstack(
                    _input("Company Name", "company_name", auto_complete="organization"),
                    _input("Address 1", "address1", auto_complete="address-line1"),
                    _input("Address 2", "address2", auto_complete="address-line2"),
                    rx.grid(
                        _input("City", "city", auto_complete="address-level2"),
                        _input("Postal code", "postal_code", auto_complete="postal-code"),
                        columns=rx.breakpoints(initial="1", sm="2"),
                        spacing="4",
                        width="100%",
                    ),
                    rx.grid(
                        _country(),
                        _region(),
                        columns=rx.breakpoints(initial="1", sm="2"),
                        spacing="4",
                        width="100%",
                    ),
                    _input(
                        "Purchase order (PO) number",
                        "po_number",
                        hint="Printed on your invoices, if your accounts payable need it.",
                    ),
                    rx.cond(
                        state.can_manage,
                        rx.button("Save changes", type="submit", loading=state.saving, size="3", align_self="start"),
                        rx.text(
                            "Your role can see the invoice address but not change it.", size="2", color_scheme="gray"
                        ),
                    ),
                    spacing="4",
                    align="stretch",
                ),
                on_submit=state.save,
                reset_on_submit=False,
            ),
            max_width="640px",
        ),
        align="stretch",
    )
