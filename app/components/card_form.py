"""The embedded Stripe Card Element: the card number never reaches our server.

The page's state owns the flow: it asks a service for a SetupIntent, mounts the element with
`mount_card_script`, and on "Save card" runs `confirm_setup_script`, whose result (the payment
method id or Stripe's error) comes back to an event handler."""

from __future__ import annotations

import json

import reflex as rx

from app.components.forms import text_field
from app.config import get_settings

CARD_ELEMENT_ID = "card-element"


def stripe_head_scripts() -> list[rx.Component]:
    return [rx.script(src=get_settings().stripe_js_url), rx.script(src="/ledgerdesk-stripe.js")]


def mount_card_script() -> str:
    key = json.dumps(get_settings().stripe_publishable_key)
    return f"window.ledgerdeskStripe.mountCard({key}, '#{CARD_ELEMENT_ID}')"


def confirm_setup_script(client_secret: str, holder_name: str) -> str:
    key = json.dumps(get_settings().stripe_publishable_key)
    return f"window.ledgerdeskStripe.confirmSetup({key}, {json.dumps(client_secret)}, {json.dumps(holder_name)})"


def confirm_sepa_setup_script(client_secret: str, *, holder_name: str, email: str, iban: str) -> str:
    key = json.dumps(get_settings().stripe_publishable_key)
    account = json.dumps({"name": holder_name, "email": email, "iban": iban})
    return f"window.ledgerdeskStripe.confirmSepaSetup({key}, {json.dumps(client_secret)}, {account})"


def confirm_payment_script(client_secret: str) -> str:
    key = json.dumps(get_settings().stripe_publishable_key)
    return f"window.ledgerdeskStripe.confirmPayment({key}, {json.dumps(client_secret)})"


def card_form(*, on_submit, on_cancel, error: rx.Var, saving: rx.Var) -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("New card", size="3", as_="h3"),
            text_field("Name on card", field_id="holder_name", required=True, auto_complete="cc-name"),
            rx.vstack(
                rx.el.label("Card", html_for=CARD_ELEMENT_ID, class_name="ld-label"),
                rx.box(id=CARD_ELEMENT_ID, class_name="ld-card-element"),
                spacing="1",
                width="100%",
            ),
            rx.cond(error != "", rx.text(error, color_scheme="red", size="2", role="alert", id="card-error")),
            rx.hstack(
                rx.button("Save card", type="submit", loading=saving, id="save-card"),
                rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=on_cancel),
                spacing="2",
            ),
            rx.text("Card details go straight to Stripe; we never see the card number.", size="1", color_scheme="gray"),
            spacing="3",
            align="stretch",
        ),
        on_submit=on_submit,
        class_name="ld-card-form",
    )
