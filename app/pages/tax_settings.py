"""Tax Settings (seed 003): the customer's tax registrations, verified by Stripe."""

from __future__ import annotations

import reflex as rx

from app.components.dialogs import dialog_actions
from app.components.forms import field, form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.components.tables import data_table
from app.db import transaction
from app.errors import DomainError, FormInvalid
from app.services import tax
from app.services.address import country_name
from app.services.permissions import Actor, Permission
from app.state.session import current_actor

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
# Computed once, so that choosing a country is answered without calling a service.
TYPE_OPTIONS = {
    country: [{"value": t.code, "label": t.description} for t in tax.types_for(country)]
    for country, _ in tax.countries()
}
STATUS_HINTS = {
    "pending": "Stripe is still verifying this number.",
    "unavailable": "The tax authority's service could not be reached; Stripe will try again.",
    "unverified": "The tax authority did not confirm this number.",
}


class TaxSettingsState(rx.State):
    registrations: list[dict[str, str]] = []
    can_manage: bool = False
    show_form: bool = False
    country: str = ""
    tax_type: str = ""
    value: str = ""
    type_options: list[dict[str, str]] = []
    country_error: str = ""
    type_error: str = ""
    value_error: str = ""
    adding: bool = False
    error: str = ""
    notice: str = ""
    # The registration the remove dialog is about ("" = closed).
    remove_id: str = ""
    remove_label: str = ""
    remove_error: str = ""
    removing: bool = False

    def _reload(self, actor: Actor) -> None:
        with transaction() as session:
            rows = tax.registrations(session, actor)
        self.can_manage = actor.can(Permission.BILLING_MANAGE)
        self.registrations = [
            {
                "id": row.public_id,
                "country": country_name(row.country),
                "description": tax.describe(row.type),
                "value": row.value,
                "status": "verified" if row.status == "verified" else "unverified",
                "hint": STATUS_HINTS.get(row.status, ""),
            }
            for row in rows
        ]

    def _clear_form(self) -> None:
        self.country = self.tax_type = self.value = ""
        self.type_options = []
        self.country_error = self.type_error = self.value_error = ""
        self.adding = False

    @rx.event
    def load(self):
        self.error = self.notice = ""
        self.show_form = False
        self._clear_form()
        self._close_remove()
        try:
            self._reload(current_actor(self, Permission.BILLING_VIEW))
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def open_form(self):
        self.error = self.notice = ""
        self._clear_form()
        self.show_form = True

    @rx.event
    def close_form(self):
        self._clear_form()
        self.show_form = False

    @rx.event
    def set_country(self, value: str):
        self.country = value
        self.type_options = TYPE_OPTIONS.get(value, [])
        self.tax_type = self.type_options[0]["value"] if len(self.type_options) == 1 else ""

    @rx.event
    def set_tax_type(self, value: str):
        self.tax_type = value

    @rx.event
    def set_value(self, value: str):
        self.value = value

    @rx.event
    def add(self, _form_data: dict):
        self.country_error = self.type_error = self.value_error = self.error = self.notice = ""
        self.adding = True
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                row = tax.add_registration(
                    session, actor, country=self.country, tax_type=self.tax_type, value=self.value
                )
                added = f"{tax.describe(row.type)} {row.value}"
            self._reload(actor)
        except FormInvalid as exc:
            for name, message in exc.errors.items():
                setattr(self, f"{name}_error", message)
            self.adding = False
            return
        except DomainError as exc:
            self.error = exc.message
            self.adding = False
            return
        self._clear_form()
        self.show_form = False
        self.notice = f"{added} added."

    def _close_remove(self) -> None:
        self.remove_id = self.remove_label = self.remove_error = ""
        self.removing = False

    @rx.event
    def ask_remove(self, registration_id: str):
        self.error = self.notice = ""
        row = next((r for r in self.registrations if r["id"] == registration_id), None)
        if row is None:
            return
        self.remove_id, self.remove_label = row["id"], f"{row['description']} {row['value']}"
        self.remove_error = ""

    @rx.event
    def dialog_open_change(self, is_open: bool):
        if not is_open and not self.removing:
            self._close_remove()

    @rx.event
    def confirm_remove(self):
        self.remove_error = ""
        self.removing = True
        yield
        label = self.remove_label
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                tax.remove_registration(session, actor, self.remove_id)
            self._reload(actor)
        except DomainError as exc:
            self.removing = False
            self.remove_error = exc.message
            return
        self._close_remove()
        self.notice = f"{label} removed."


def _status(row: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.cond(
            row["status"] == "verified",
            rx.badge("verified", color_scheme="gray", variant="solid", high_contrast=True),
            rx.badge("unverified", color_scheme="red", variant="solid"),
        ),
        rx.cond(row["hint"] != "", rx.text(row["hint"], size="1", color_scheme="gray")),
        spacing="1",
        align="start",
    )


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row["id"], variant="ghost")),
        rx.table.cell(row["country"]),
        rx.table.cell(row["description"]),
        rx.table.cell(row["value"]),
        rx.table.cell(_status(row)),
        rx.table.cell(
            rx.cond(
                TaxSettingsState.can_manage,
                rx.icon_button(
                    rx.icon("trash-2", size=16),
                    variant="ghost",
                    color_scheme="red",
                    aria_label="Remove tax registration " + row["value"],
                    on_click=TaxSettingsState.ask_remove(row["id"]),
                ),
            ),
            text_align="right",
        ),
        data_registration=row["value"],
    )


def _table() -> rx.Component:
    return data_table(
        "tax-registrations",
        ["Id", "Country", "Description", "Value", "Status"],
        TaxSettingsState.registrations,
        _row,
    )


def _add_form() -> rx.Component:
    state = TaxSettingsState
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Add Tax Registration", size="3", as_="h2"),
                rx.grid(
                    field(
                        "Country",
                        rx.el.select(
                            rx.el.option("Select a country", value=""),
                            *[rx.el.option(name, value=code) for code, name in tax.countries()],
                            id="tax_country",
                            name="tax_country",
                            value=state.country,
                            on_change=state.set_country,
                            style=SELECT_STYLE,
                        ),
                        field_id="tax_country",
                        error=state.country_error,
                    ),
                    field(
                        "Type",
                        rx.el.select(
                            rx.el.option("Select a type", value=""),
                            rx.foreach(state.type_options, lambda t: rx.el.option(t["label"], value=t["value"])),
                            id="tax_type",
                            name="tax_type",
                            value=state.tax_type,
                            on_change=state.set_tax_type,
                            style=SELECT_STYLE,
                        ),
                        field_id="tax_type",
                        error=state.type_error,
                    ),
                    columns=rx.breakpoints(initial="1", sm="2"),
                    spacing="4",
                    width="100%",
                ),
                text_field(
                    "Value",
                    field_id="tax_value",
                    value=state.value,
                    on_change=state.set_value,
                    error=state.value_error,
                    placeholder="DE123456788",
                    hint="The number as your tax authority issued it; spaces and dots are fine.",
                ),
                rx.hstack(
                    rx.button("Add registration", type="submit", loading=state.adding),
                    rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=state.close_form),
                    spacing="2",
                ),
                spacing="4",
                align="stretch",
            ),
            on_submit=state.add,
            reset_on_submit=False,
        ),
        max_width="640px",
        width="100%",
    )


def _remove_dialog() -> rx.Component:
    state = TaxSettingsState
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Remove tax registration"),
            rx.alert_dialog.description(
                "Remove ", state.remove_label, "? It is no longer printed on new invoices and is removed from Stripe."
            ),
            rx.cond(
                state.remove_error != "",
                rx.text(state.remove_error, color_scheme="red", size="2", role="alert", id="remove-error"),
            ),
            dialog_actions(
                rx.button("Remove", color_scheme="red", loading=state.removing, on_click=state.confirm_remove),
                state.removing,
                margin_top="1em",
            ),
            max_width="480px",
        ),
        open=state.remove_id != "",
        on_open_change=state.dialog_open_change,
    )


@console_page(
    route="/billing/tax-settings",
    title="Tax Settings",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    nav_label="Tax Settings",
    order=180,
    on_load=[TaxSettingsState.load],
)
def tax_settings_page() -> rx.Component:
    state = TaxSettingsState
    return rx.vstack(
        rx.hstack(
            page_heading("Tax Settings", "Your tax registrations, printed on your invoices and verified by Stripe."),
            rx.spacer(),
            rx.cond(
                state.can_manage & ~state.show_form,
                rx.button(rx.icon("plus", size=16), "Add Tax Registration", on_click=state.open_form, id="add-tax"),
            ),
            align="start",
            width="100%",
        ),
        form_notice(state.notice),
        form_error(state.error),
        rx.cond(state.show_form, _add_form()),
        rx.cond(
            state.registrations.length() > 0,
            _table(),
            rx.callout("No tax registrations yet.", icon="receipt", id="tax-registrations-empty"),
        ),
        _remove_dialog(),
        spacing="4",
        align="stretch",
    )
