"""SEPA Direct Debit against a real localstripe process, on SQLite and PostgreSQL: the IBAN is
checked before Stripe is called, a confirmed bank account is listed with its bank code and last
four digits and can be the default, and a SEPA payment credits only when it succeeds (webhook),
once; a failed debit moves no money and keeps Stripe's reason."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlmodel import select

from app.config import get_settings
from app.errors import ValidationFailed
from app.models import LedgerEntry, Payment
from app.payments import gateway
from app.services import ledger, payment_methods, stripe_events, topups
from app.services.customers import stripe_customer_id
from tests.factories import actor_for, make_account, make_user

pytestmark = pytest.mark.usefixtures("localstripe")  # the owner's account is billed through (local) Stripe

IBAN = "DE89 3704 0044 0532 0130 00"
# localstripe lets a debit from this account fail a moment after it was accepted.
FAILING_IBAN = "DE62370400440532013001"


def _confirm_in_stripe_js(base_url: str, client_secret: str, iban: str) -> str:
    """What confirmSepaDebitSetup does in the page: confirm the SetupIntent with the bank details."""
    setup_intent = client_secret.split("_secret_")[0]
    response = httpx.post(
        f"{base_url}/v1/setup_intents/{setup_intent}/confirm",
        auth=(get_settings().stripe_secret_key, ""),
        data={
            "client_secret": client_secret,
            "payment_method_data[type]": "sepa_debit",
            "payment_method_data[sepa_debit][iban]": iban,
            "payment_method_data[billing_details][name]": "Erika Mustermann",
            "payment_method_data[billing_details][email]": "erika@example.com",
        },
    )
    response.raise_for_status()
    return response.json()["payment_method"]


def _add_bank_account(session, actor, base_url: str, iban: str = IBAN) -> str:
    secret, checked = payment_methods.start_bank_account_setup(
        session, actor, holder_name="Erika Mustermann", email="erika@example.com", iban=iban, mandate_accepted=True
    )
    saved = payment_methods.save_bank_account(
        session, actor, _confirm_in_stripe_js(base_url, secret, checked.iban), checked.holder_name
    )
    session.commit()
    return saved.stripe_payment_method_id


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"iban": "DE89 3704 0044 0532 0130 01"},
            "iban",
            "This IBAN is not valid. Check it against your bank statement.",
        ),
        ({"iban": "DE89 3704"}, "iban", "This IBAN is not valid. Check it against your bank statement."),
        ({"iban": ""}, "iban", "Enter the IBAN."),
        ({"iban": "BR15 0000 0000 0000 1093 2840 814P 2"}, "iban", "This bank account is not in a SEPA country."),
        ({"mandate_accepted": False}, "mandate", "Accept the SEPA Direct Debit mandate to continue."),
        ({"holder_name": "  "}, "sepa_holder_name", "Enter the account holder's name."),
        ({"email": "erika@"}, "sepa_email", "Enter a valid email address."),
    ],
)
def test_bad_bank_details_are_refused_at_their_field_before_stripe_is_called(
    session, gateway_calls, fields, field, message
):
    account = make_account(session)
    actor = actor_for(make_user(session, account, "owner@example.com", "owner"), "owner")
    session.commit()
    details = {"holder_name": "Erika Mustermann", "email": "erika@example.com", "iban": IBAN, "mandate_accepted": True}
    with pytest.raises(ValidationFailed) as refused:
        payment_methods.start_bank_account_setup(session, actor, **{**details, **fields})
    assert (refused.value.field, refused.value.message) == (field, message)
    assert gateway_calls == []


def test_a_confirmed_bank_account_is_listed_with_bank_code_and_last_four_and_can_be_the_default(
    session, owner, localstripe
):
    actor, account = owner
    card = payment_methods.save_card(session, actor, "pm_card_visa").stripe_payment_method_id
    session.commit()
    bank = _add_bank_account(session, actor, localstripe)

    listed = payment_methods.saved_methods(session, actor)
    sepa = next(m for m in listed if m.stripe_payment_method_id == bank)
    assert (sepa.kind, sepa.bank_code, sepa.last4, sepa.holder_name) == (
        "sepa_debit",
        "37040044",
        "3000",
        "Erika Mustermann",
    )
    assert payment_methods.label(sepa) == "SEPA Debit •••• 3000"
    assert payment_methods.expiry(sepa) == "Bank code 37040044"
    assert not sepa.is_default and next(m for m in listed if m.stripe_payment_method_id == card).is_default

    payment_methods.set_default(session, actor, bank)
    session.commit()
    assert [m.stripe_payment_method_id for m in payment_methods.saved_methods(session, actor) if m.is_default] == [bank]
    _, default = gateway.list_cards(stripe_customer_id(session, account.id))
    assert default == bank

    payment_methods.delete_method(session, actor, bank, new_default_id=card)
    session.commit()
    assert [m.stripe_payment_method_id for m in payment_methods.saved_methods(session, actor)] == [card]


def test_a_sepa_top_up_credits_once_when_the_debit_succeeds(session, owner, localstripe):
    actor, account = owner
    bank = _add_bank_account(session, actor, localstripe)
    result = topups.start_card_topup(session, actor, amount_text="30", payment_method_id=bank, request_key="sepa-1")
    session.commit()
    # Real Stripe answers "processing" and the webhook brings the success; localstripe may
    # already report success. Either way the credit lands once, also when the webhook follows.
    assert result.status in ("processing", "succeeded")
    intent = httpx.get(
        f"{localstripe}/v1/payment_intents/{result.payment_intent_id}", auth=(get_settings().stripe_secret_key, "")
    ).json()
    assert intent["payment_method"] == bank
    for event_id in ("evt_sepa_ok", "evt_sepa_ok_again"):
        stripe_events.record_and_handle(
            session,
            {"id": event_id, "type": "payment_intent.succeeded", "data": {"object": {**intent, "status": "succeeded"}}},
        )
        session.commit()
    assert ledger.balance_of(session, account.id) == 3_000 == ledger.ledger_sum(session, account.id)
    assert session.exec(select(Payment.status).where(Payment.public_id == result.payment_id)).one() == "succeeded"


def test_a_processing_sepa_payment_credits_nothing_and_a_failed_debit_keeps_the_reason(session, owner, localstripe):
    actor, account = owner
    bank = _add_bank_account(session, actor, localstripe, FAILING_IBAN)
    result = topups.start_card_topup(session, actor, amount_text="30", payment_method_id=bank, request_key="sepa-2")
    session.commit()
    assert result.status == "processing"
    assert [p.status for p in topups.recent_payments(session, actor, "UTC")] == ["Processing"]
    assert ledger.balance_of(session, account.id) == 0
    assert session.exec(select(LedgerEntry)).all() == []
    # A replayed request neither charges again nor credits (localstripe fails this debit 0.5 s after
    # it is made, so on a busy machine the replay may already see the failure).
    again = topups.start_card_topup(session, actor, amount_text="30", payment_method_id=bank, request_key="sepa-2")
    assert again.payment_id == result.payment_id and again.status in ("processing", "failed")
    assert session.exec(select(LedgerEntry)).all() == []

    # The bank refuses the debit a moment later; Stripe's webhook says so.
    deadline = time.monotonic() + 10
    while True:
        intent = httpx.get(
            f"{localstripe}/v1/payment_intents/{result.payment_intent_id}", auth=(get_settings().stripe_secret_key, "")
        ).json()
        if intent["status"] != "processing" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert intent["status"] == "requires_payment_method"
    stripe_events.record_and_handle(
        session, {"id": "evt_sepa_failed", "type": "payment_intent.payment_failed", "data": {"object": intent}}
    )
    session.commit()
    payment = session.exec(select(Payment).where(Payment.public_id == result.payment_id)).one()
    assert payment.status == "failed" and payment.failure_message
    assert ledger.balance_of(session, account.id) == 0 == ledger.ledger_sum(session, account.id)
    # Add Usage Credits lists it with Stripe's reason.
    [shown] = topups.recent_payments(session, actor, "UTC")
    assert (shown.amount, shown.how, shown.status, shown.reason) == (
        "$30.00",
        "SEPA Debit •••• 3001",
        "Failed",
        payment.failure_message,
    )
