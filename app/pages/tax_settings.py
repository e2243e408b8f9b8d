"""Tax Settings (seed 003): the customer's tax registrations, verified by Stripe."""

from __future__ import annotations

import reflex as rx

from app.components.dialogs import confirm_dialog
from app.components.forms import (
    SELECT_STYLE,
    error_of,
    field,
    field_pair,
    form_messages,
    select,
    state_form,
    text_field,
)
from app.components.layout import console_page
from app.components.tables import data_table, delete_icon_button, rows_or_empty
from app.services import tax
from app.services.permissions import Permission
from app.services.tax import RegistrationRow
from app.state.confirm import ConfirmState
from app.state.events import event
from app.state.form import FormState, texts
from app.state.session import acting

# Computed once, so that choosing a country is answered without calling a service.
TYPE_OPTIONS = {country: tax.type_options(country) for country, _ in tax.countries()}


class TaxSettingsState(FormState, ConfirmState, rx.State):
    rows: rx.Field[list[RegistrationRow]] = rx.field(default_factory=list)
    can_manage: rx.Field[bool] = rx.field(False)
    show_form: rx.Field[bool] = rx.field(False)
    # The country chosen in the form, its tax ID types ([code, description]) and the type the
    # Type list starts from: the only one, where a country has one.
    country: rx.Field[str] = rx.field("")
    type_options: rx.Field[list[list[str]]] = rx.field(default_factory=list)
    tax_type: rx.Field[str] = rx.field("")

    def _show(self, view: tax.TaxView) -> None:
        self.rows, self.can_manage = view.rows, view.can_manage

    @rx.event
    def load(self):
        self.show_form = False
        self._close_confirm()
        with self._attempt(), acting(self, Permission.BILLING_VIEW) as (actor, session):
            self._show(tax.tax_view(session, actor))

    def _choose(self, code: str) -> None:
        self.country, self.type_options = code, TYPE_OPTIONS.get(code, [])
        self.tax_type = self.type_options[0][0] if len(self.type_options) == 1 else ""

    @rx.event
    def open_form(self):
        self._clear_messages()
        self._choose("")
        self.show_form = True

    @rx.event
    def close_form(self):
        self._clear_messages()
        self.show_form = False

    @rx.event
    def choose_country(self, code: str):
        self._choose(code)

    @rx.event
    def add(self, form: dict):
        with self._attempt("add"):
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                country, tax_type, value = texts(form, "tax_country", "tax_type", "tax_value")
                added = tax.add_registration(session, actor, country=country, tax_type=tax_type, value=value)
                label = tax.label(added)
                self._show(tax.tax_view(session, actor))
            self.show_form = False
            self.notice = f"{label} added."

    @event
    def ask_remove(self, registration_id: str):
        self._clear_messages()
        row = next((r for r in self.rows if r.id == registration_id), None)
        if row is not None:
            question = f"Remove {row.label}? It is no longer printed on new invoices and is removed from Stripe."
            self._ask("remove", target=row.id, title="Remove tax registration", lines=[question], button="Remove")

    @rx.event
    def confirm(self):
        row = next((r for r in self.rows if r.id == self.confirm_target), None)
        label = row.label if row else ""
        with self._confirming():
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                tax.remove_registration(session, actor, self.confirm_target)
                self._show(tax.tax_view(session, actor))
            self.notice = f"{label} removed."


def _status(row: RegistrationRow) -> rx.Component:
    return rx.vstack(
        rx.cond(
            row.verified,
            rx.badge("verified", color_scheme="gray", variant="solid", high_contrast=True),
            rx.badge("unverified", color_scheme="red", variant="solid"),
        ),
        rx.cond(row.hint != "", rx.text(row.hint, size="1", color_scheme="gray")),
        spacing="1",
        align="start",
    )


def _row(row: RegistrationRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row.id, variant="ghost")),
        rx.table.cell(row.country),
        rx.table.cell(row.description),
        rx.table.cell(row.value),
        rx.table.cell(_status(row)),
        rx.table.cell(
            rx.cond(
                TaxSettingsState.can_manage,
                delete_icon_button("Remove tax registration " + row.value, TaxSettingsState.ask_remove(row.id)),
            ),
            text_align="right",
        ),
        data_registration=row.value,
    )


def _add_form() -> rx.Component:
    state = TaxSettingsState
    return rx.card(
        state_form(
            state,
            rx.vstack(
                rx.heading("Add Tax Registration", size="3", as_="h2"),
                field_pair(
                    field(
                        "Country",
                        select(
                            "tax_country", tax.countries(), empty="Select a country", on_change=state.choose_country
                        ),
                        field_id="tax_country",
                        error=error_of(state, "country"),
                    ),
                    field(
                        "Type",
                        rx.el.select(
                            rx.el.option("Select a type", value=""),
                            rx.foreach(state.type_options, lambda t: rx.el.option(t[1], value=t[0])),
                            id="tax_type",
                            name="tax_type",
                            default_value=state.tax_type,
                            # A new country's list starts again from its only type, if it has one.
                            key=state.country,
                            style=SELECT_STYLE,
                        ),
                        field_id="tax_type",
                        error=error_of(state, "type"),
                    ),
                ),
                text_field(
                    "Value",
                    field_id="tax_value",
                    error=error_of(state, "value"),
                    placeholder="DE123456788",
                    hint="The number as your tax authority issued it; spaces and dots are fine.",
                ),
                rx.hstack(
                    rx.button("Add registration", type="submit", loading=state.busy == "add"),
                    rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=state.close_form),
                    spacing="2",
                ),
                spacing="4",
                align="stretch",
            ),
            on_submit=state.add,
        ),
        max_width="640px",
        width="100%",
    )


def _add_registration_button() -> rx.Component:
    return rx.cond(
        TaxSettingsState.can_manage & ~TaxSettingsState.show_form,
        rx.button(rx.icon("plus", size=16), "Add Tax Registration", on_click=TaxSettingsState.open_form, id="add-tax"),
    )


@console_page(
    "/billing/tax-settings",
    "Your tax registrations, printed on your invoices and verified by Stripe.",
    on_load=[TaxSettingsState.load],
    action=_add_registration_button,
)
def tax_settings_page() -> list[rx.Component]:
    state = TaxSettingsState
    return [
        form_messages(state),
        rx.cond(state.show_form, _add_form()),
        rows_or_empty(
            state.rows,
            data_table("tax-registrations", ["Id", "Country", "Description", "Value", "Status"], state.rows, _row),
            "No tax registrations yet.",
            empty_id="tax-registrations-empty",
            icon="receipt",
        ),
        confirm_dialog(state, max_width="480px"),
    ]
