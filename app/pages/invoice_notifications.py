"""Invoice Notifications (seed 003): the billing email that invoices are sent to."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
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
                            default_value=state.email,
                            error=error_of(state, "email"),
                            placeholder="billing@example.com",
                            auto_complete="email",
                            disabled=~state.can_manage,
                        ),
                        rx.cond(
                            state.can_manage,
                            rx.button(
                                "Updates", type="submit", loading=state.busy == "save", size="3", align_self="start"
                            ),
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
                    key=state.form_key,
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
