"""The embedded Stripe Card Element: the card number never reaches our server.

The page's state owns the flow (`app.state.card_capture` to save a card or a SEPA bank account,
`app.state.card_payment` to pay with a saved card): it asks a service for a SetupIntent, mounts
the element with `mount_card_script`, and on "Save card" runs `confirm_setup_script`, whose result
(the payment method id or Stripe's error) comes back to an event handler."""

from __future__ import annotations

import json

import reflex as rx

from app.components.forms import error_of, text_field
from app.config import get_settings
from app.services.payment_methods import SEPA_MANDATE

CARD_ELEMENT_ID = "card-element"

MANDATE_ACCEPTED = "I accept the SEPA Direct Debit mandate above."


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


def capture_form(state) -> rx.Component:
    """The open capture of `state` (which mixes in `app.state.card_capture.CardCaptureState`):
    the card form or the SEPA bank-account form, each with its errors."""
    return rx.fragment(
        rx.cond(state.capture == "card", rx.box(card_form(state), max_width="560px", width="100%")),
        rx.cond(state.capture == "sepa", rx.box(sepa_form(state), max_width="560px", width="100%")),
    )


def _form_error(message: rx.Var, error_id: str) -> rx.Component:
    return rx.cond(message != "", rx.text(message, color_scheme="red", size="2", role="alert", id=error_id))


def _capture(
    state, title: str, *fields: rx.Component, save: str, save_id: str, kind: str, note: str, on_submit
) -> rx.Component:
    """A capture form: its title, fields, Save and Cancel, and what happens to what is typed."""
    return rx.form(
        rx.vstack(
            rx.heading(title, size="3", as_="h3"),
            *fields,
            rx.hstack(
                rx.button(save, type="submit", loading=state.busy == kind, id=save_id),
                rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=state.close_capture),
                spacing="2",
            ),
            rx.text(note, size="1", color_scheme="gray"),
            spacing="3",
            align="stretch",
        ),
        on_submit=on_submit,
        class_name="ld-card-form",
    )


def card_form(state) -> rx.Component:
    return _capture(
        state,
        "New card",
        text_field("Name on card", field_id="holder_name", required=True, auto_complete="cc-name"),
        rx.vstack(
            rx.el.label("Card", html_for=CARD_ELEMENT_ID, class_name="ld-label"),
            rx.box(id=CARD_ELEMENT_ID, class_name="ld-card-element"),
            spacing="1",
            width="100%",
        ),
        _form_error(error_of(state, "card"), "card-error"),
        save="Save card",
        save_id="save-card",
        kind="card",
        note="Card details go straight to Stripe; we never see the card number.",
        on_submit=state.save_card,
    )


def sepa_form(state) -> rx.Component:
    return _capture(
        state,
        "New bank account (SEPA Direct Debit)",
        text_field(
            "Account holder name",
            field_id="sepa_holder_name",
            error=error_of(state, "sepa_holder_name"),
            auto_complete="name",
            max_length=200,
        ),
        text_field(
            "Email",
            field_id="sepa_email",
            type="email",
            error=error_of(state, "sepa_email"),
            auto_complete="email",
        ),
        text_field(
            "IBAN",
            field_id="iban",
            error=error_of(state, "iban"),
            placeholder="DE89 3704 0044 0532 0130 00",
            max_length=42,
            auto_complete="off",
        ),
        rx.text(SEPA_MANDATE, size="1", color_scheme="gray", id="sepa-mandate"),
        rx.el.label(
            rx.hstack(
                rx.checkbox(name="mandate", id="mandate", aria_label=MANDATE_ACCEPTED),
                rx.text(MANDATE_ACCEPTED, size="2"),
                align="center",
                spacing="2",
            ),
        ),
        _form_error(error_of(state, "mandate"), "mandate-error"),
        _form_error(error_of(state, "sepa"), "sepa-error"),
        save="Save bank account",
        save_id="save-bank-account",
        kind="sepa",
        note="SEPA payments take a few days: top-ups and invoices paid this way show as processing until "
        "the bank confirms them.",
        on_submit=state.save_bank_account,
    )
