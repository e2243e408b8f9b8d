"""Invoice Notifications (seed 003): the billing email that invoices are sent to."""

from __future__ import annotations

import reflex as rx

from app.components.forms import form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.db import transaction
from app.errors import DomainError
from app.services import billing_details
from app.services.permissions import Permission
from app.state.session import current_actor


class InvoiceNotificationsState(rx.State):
    email: str = ""
    email_error: str = ""
    can_manage: bool = False
    error: str = ""
    notice: str = ""
    saving: bool = False

    @rx.event
    def load(self):
        self.email_error = self.error = self.notice = ""
        self.saving = False
        try:
            actor = current_actor(self, Permission.BILLING_VIEW)
            with transaction() as session:
                self.email = billing_details.billing_email(session, actor)
        except DomainError as exc:
            self.error = exc.message
            return
        self.can_manage = actor.can(Permission.BILLING_MANAGE)

    @rx.event
    def set_email(self, value: str):
        self.email = value

    @rx.event
    def save(self, _form_data: dict):
        self.email_error = self.error = self.notice = ""
        self.saving = True
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                self.email = billing_details.save_billing_email(session, actor, self.email)
        except DomainError as exc:
            if exc.field == "email":
                self.email_error = exc.message
            else:
                self.error = exc.message
        else:
            self.notice = f"Invoices and billing notifications now go to {self.email}."
        self.saving = False


@console_page(
    route="/billing/invoice-notifications",
    title="Invoice Notifications",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    nav_label="Invoice Notifications",
    order=170,
    on_load=[InvoiceNotificationsState.load],
)
def invoice_notifications_page() -> rx.Component:
    state = InvoiceNotificationsState
    return rx.vstack(
        page_heading("Invoice Notifications"),
        rx.card(
            rx.vstack(
                rx.heading("Billing email", size="4", as_="h2"),
                rx.text("Invoices and other billing notifications will be sent here", color_scheme="gray", size="2"),
                form_notice(state.notice),
                form_error(state.error),
                rx.form(
                    rx.vstack(
                        text_field(
                            "Email",
                            field_id="email",
                            type="email",
                            value=state.email,
                            on_change=state.set_email,
                            error=state.email_error,
                            placeholder="billing@example.com",
                            auto_complete="email",
                            disabled=~state.can_manage,
                        ),
                        rx.cond(
                            state.can_manage,
                            rx.button("Updates", type="submit", loading=state.saving, size="3", align_self="start"),
                            rx.text(
                                "Your role can see the billing email but not change it.",
                                size="2",
                                color_scheme="gray",
                            ),
                        ),
                        spacing="4",
                        align="stretch",
                    ),
                    on_submit=state.save,
                    reset_on_submit=False,
                    # Our own check names what is wrong; the browser's would only block.
                    no_validate=True,
                ),
                spacing="3",
                align="stretch",
            ),
            max_width="560px",
        ),
        align="stretch",
    )
