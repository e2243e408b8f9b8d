"""Invoice Address (seed 003): who invoices are made out to, and the purchase order number."""

from __future__ import annotations

import reflex as rx

from app.components.address import address_fields
from app.components.forms import error_of, form_messages, save_or_read_only, settings_form, text_field
from app.components.layout import console_page
from app.services import billing_details
from app.services.permissions import Permission
from app.state.address import AddressFormState
from app.state.form import FormState
from app.state.session import acting


class InvoiceAddressState(FormState, AddressFormState, rx.State):
    company_name: rx.Field[str] = rx.field("")
    po_number: rx.Field[str] = rx.field("")
    can_manage: rx.Field[bool] = rx.field(False)

    def _show(self, address: billing_details.InvoiceAddress) -> None:
        self.company_name, self.po_number = address.company_name, address.po_number
        self._show_address(address)
        self._remount_form()

    @rx.event
    def load(self):
        with self._attempt():
            with acting(self, Permission.BILLING_VIEW) as (actor, session):
                self._show(billing_details.invoice_address(session, actor))
            self.can_manage = actor.can(Permission.BILLING_MANAGE)

    @rx.event
    def save(self, form: dict):
        with self._attempt("save"):
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                self._show(billing_details.save_address(session, actor, form))
            self.notice = "Your invoice address is saved."


def _input(label: str, name: str, **props) -> rx.Component:
    state = InvoiceAddressState
    return text_field(
        label,
        field_id=name,
        default_value=getattr(state, name),
        error=error_of(state, name),
        disabled=~state.can_manage,
        **props,
    )


@console_page(
    "/billing/invoice-address",
    "The address your invoices are made out to. Stripe gets it too.",
    on_load=[InvoiceAddressState.load],
    spacing="3",
)
def invoice_address_page() -> list[rx.Component]:
    state = InvoiceAddressState
    return [
        form_messages(state),
        rx.card(
            settings_form(
                state,
                _input("Company Name", "company_name", auto_complete="organization"),
                address_fields(state, billing_details.FORM_NAMES, disabled=~state.can_manage),
                _input(
                    "Purchase order (PO) number",
                    "po_number",
                    hint="Printed on your invoices, if your accounts payable need it.",
                ),
                save_or_read_only(state, "Save changes", "Your role can see the invoice address but not change it."),
            ),
            max_width="640px",
        ),
    ]
