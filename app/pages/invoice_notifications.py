"""Invoice Notifications (seed 003): the billing email that invoices are sent to."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, form_messages, save_or_read_only, settings_form, text_field
from app.components.layout import console_page, section_card
from app.services import billing_details
from app.services.permissions import Permission
from app.state.form import FormState
from app.state.session import acting


class InvoiceNotificationsState(FormState, rx.State):
    email: rx.Field[str] = rx.field("")
    can_manage: rx.Field[bool] = rx.field(False)

    @rx.event
    def load(self):
        with self._attempt():
            with acting(self, Permission.BILLING_VIEW) as (actor, session):
                self.email = billing_details.billing_email(session, actor)
            self.can_manage = actor.can(Permission.BILLING_MANAGE)
            self._remount_form()

    @rx.event
    def save(self, form: dict):
        with self._attempt("save"):
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                self.email = billing_details.save_billing_email(session, actor, str(form.get("email") or ""))
            self._remount_form()
            self.notice = f"Invoices and billing notifications now go to {self.email}."


@console_page("/billing/invoice-notifications", on_load=[InvoiceNotificationsState.load], spacing="3")
def invoice_notifications_page() -> list[rx.Component]:
    state = InvoiceNotificationsState
    return [
        section_card(
            "Billing email",
            form_messages(state),
            settings_form(
                state,
                text_field(
                    "Email",
                    field_id="email",
                    type="email",
                    default_value=state.email,
                    error=error_of(state, "email"),
                    placeholder="billing@example.com",
                    auto_complete="email",
                    disabled=~state.can_manage,
                ),
                save_or_read_only(state, "Updates", "Your role can see the billing email but not change it."),
                # Our own check names what is wrong; the browser's would only block.
                no_validate=True,
            ),
            description="Invoices and other billing notifications will be sent here",
            max_width="560px",
        ),
    ]
