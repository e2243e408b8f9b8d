"""Add Usage Credits by card, against a real localstripe process, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from app.errors import Conflict, PermissionDenied, ValidationFailed
from app.models import LedgerEntry, Payment, PaymentMethod, utcnow
from app.payments import gateway
from app.services import info, ledger, topups
from app.services.overview import billing_settings
from tests.factories import actor_for, make_user, owner_and_account
from tests.stripe_fixtures import raw_card, save_card

pytestmark = pytest.mark.usefixtures("localstripe")  # the owner's account is billed through (local) Stripe


def _entries(session, account_id):
    return session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id)).all()


def test_card_topup_credits_once_and_a_replay_changes_nothing(session, owner):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    assert topups.current_balance(session, actor) == "$0.00"

    result = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="req-1")
    session.commit()
    assert topups.current_balance(session, actor) == "$25.00"
    assert result.status == "succeeded" and result.amount_cents == 2500 and result.payment_intent_id.startswith("pi_")
    assert ledger.balance_of(session, account.id) == 2500 == ledger.ledger_sum(session, account.id)
    [entry] = _entries(session, account.id)
    assert entry.source == "purchase"
    assert entry.description == f"Stripe Payment Intent {result.payment_intent_id} via Add Usage Credits"

    again = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="req-1")
    session.commit()
    assert again == result
    assert ledger.balance_of(session, account.id) == 2500 and len(_entries(session, account.id)) == 1
    assert len(session.exec(select(Payment)).all()) == 1


def test_a_card_that_fails_to_charge_credits_nothing(session, owner):
    actor, account = owner
    card = save_card(session, account, "pm_card_chargeCustomerFail")

    result = topups.start_card_topup(session, actor, amount_text="$40", payment_method_id=card, request_key="req-2")
    session.commit()
    assert result.status == "failed" and result.message == "Your card was declined."
    assert ledger.balance_of(session, account.id) == 0 and _entries(session, account.id) == []
    payment = session.exec(select(Payment)).one()
    assert payment.status == "failed" and payment.failure_message == "Your card was declined."


@pytest.mark.parametrize("amount", ["4.99", "5000.01", "abc", ""])
def test_amounts_outside_5_to_5000_dollars_are_refused(session, owner, amount):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    with pytest.raises(ValidationFailed) as refused:
        topups.start_card_topup(session, actor, amount_text=amount, payment_method_id=card, request_key="req-3")
    assert refused.value.field == "amount"
    if amount in ("4.99", "5000.01"):
        assert refused.value.message == "Enter an amount between $5 and $5000."
    assert session.exec(select(Payment)).all() == []


def test_the_bounds_themselves_are_accepted(session, owner):
    actor, account = owner
    account.plan_code = "business"  # $100,000 of credits a month
    card = save_card(session, account, "pm_card_visa")
    for key, amount in (("low", "5"), ("high", "5,000.00")):
        assert (
            topups.start_card_topup(session, actor, amount_text=amount, payment_method_id=card, request_key=key).status
            == "succeeded"
        )
    session.commit()
    assert ledger.balance_of(session, account.id) == 500 + 500_000


def test_credits_bought_this_month_stop_at_the_plans_limit_info_shows(session, owner, monkeypatch):
    """Basic includes $500 of usage credits a month: with $480 bought this month (UTC; crypto
    purchases here, credited by their Checkout Session), $25 more
    is refused at the amount, by card and by crypto, with the limit named; $20 passes; a grant
    does not count, and last month's purchases neither."""
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    month = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for key, cents, source, at in (
        ("stripe:cs:last-month", 40_000, "purchase", month - timedelta(seconds=1)),
        ("stripe:cs:first-second", 30_000, "purchase", month),
        ("stripe:cs:recharge", 18_000, "purchase", utcnow()),
        ("gift", 90_000, "grant", utcnow()),
    ):
        ledger.credit(
            session,
            account_id=account.id,
            amount_cents=cents,
            source=source,
            description="",
            idempotency_key=key,
            now=at,
        )
    session.commit()
    credits = next(limit for limit in info.account_info(session, actor).limits if limit.key == "monthly_credits_cents")
    assert (credits.used_text, credits.limit_text) == ("$480.00", "$500.00")
    with pytest.raises(ValidationFailed) as refused:
        topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="over")
    assert refused.value.field == "amount"
    assert refused.value.message.startswith(
        "Account limit reached: your Basic plan includes $500.00 of usage credits a month and $480.00 were bought"
    )
    assert "at most $20.00 more" in refused.value.message
    # As on a Stripe account that takes crypto (localstripe cannot), whose limit is the same.
    monkeypatch.setattr(gateway, "crypto_payments_enabled", lambda: True)
    with pytest.raises(ValidationFailed, match="Account limit reached"):
        topups.start_crypto_topup(session, actor, amount_text="25", request_key="over-crypto")
    assert session.exec(select(Payment)).all() == []
    paid = topups.start_card_topup(session, actor, amount_text="20", payment_method_id=card, request_key="fits")
    assert paid.status == "succeeded"
    session.commit()
    # The replayed request is answered, not refused, now that the limit is reached.
    assert topups.start_card_topup(session, actor, amount_text="20", payment_method_id=card, request_key="fits") == paid


def test_a_member_cannot_add_credits(session, owner):
    _, account = owner
    card = save_card(session, account, "pm_card_visa")
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    session.commit()
    with pytest.raises(PermissionDenied):
        topups.start_card_topup(session, member, amount_text="25", payment_method_id=card, request_key="req-4")
    with pytest.raises(PermissionDenied):
        topups.start_crypto_topup(session, member, amount_text="25", request_key="req-4")


def test_only_the_accounts_own_cards_can_be_charged(session, owner):
    actor, account = owner
    other_actor, other_account = owner_and_account(session, email="other@example.com")
    foreign = save_card(session, other_account, "pm_card_visa")
    for unknown in (foreign, "pm_card_visa", "pm_nope"):
        with pytest.raises(ValidationFailed) as refused:
            topups.start_card_topup(session, actor, amount_text="25", payment_method_id=unknown, request_key="req-5")
        assert refused.value.field == "payment_method"
    assert ledger.balance_of(session, account.id) == 0 and ledger.balance_of(session, other_account.id) == 0


def test_invoice_priced_accounts_pay_by_invoice(session, owner):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    billing_settings(session, account.id).invoice_priced = True
    session.commit()
    with pytest.raises(Conflict):
        topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="req-6")


def test_3d_secure_asks_the_browser_then_credits_once_when_finished(session, owner, localstripe):
    actor, account = owner
    card = save_card(session, account, raw_card(localstripe, "4000002500003155"))

    result = topups.start_card_topup(session, actor, amount_text="30", payment_method_id=card, request_key="req-7")
    session.commit()
    assert result.status == "requires_action"
    assert result.client_secret.startswith(result.payment_intent_id + "_secret_")
    assert ledger.balance_of(session, account.id) == 0
    replay = topups.start_card_topup(session, actor, amount_text="30", payment_method_id=card, request_key="req-7")
    assert replay.client_secret == result.client_secret

    # What localstripe's Stripe.js does when the payer clicks "Complete authentication".
    httpx.post(
        f"{localstripe}/v1/payment_intents/{result.payment_intent_id}/_authenticate",
        data={"client_secret": result.client_secret, "success": "true"},
        auth=("sk_test_localstripe", ""),
    ).raise_for_status()
    finished = topups.finish_card_topup(session, actor, result.payment_intent_id)
    session.commit()
    assert finished.status == "succeeded" and finished.client_secret == ""
    assert topups.finish_card_topup(session, actor, result.payment_intent_id).status == "succeeded"
    session.commit()
    assert ledger.balance_of(session, account.id) == 3000 and len(_entries(session, account.id)) == 1


def test_failed_3d_secure_credits_nothing(session, owner, localstripe):
    actor, account = owner
    card = save_card(session, account, raw_card(localstripe, "4000002500003155"))
    result = topups.start_card_topup(session, actor, amount_text="30", payment_method_id=card, request_key="req-8")
    session.commit()
    httpx.post(
        f"{localstripe}/v1/payment_intents/{result.payment_intent_id}/_authenticate",
        data={"client_secret": result.client_secret, "success": "false"},
        auth=("sk_test_localstripe", ""),
    ).raise_for_status()
    finished = topups.finish_card_topup(session, actor, result.payment_intent_id)
    session.commit()
    assert finished.status == "failed" and finished.message
    assert ledger.balance_of(session, account.id) == 0


def test_saved_cards_mirror_stripe(session, owner):
    _, account = owner
    first = save_card(session, account, "pm_card_visa")
    second = save_card(session, account, "pm_card_visa")
    rows = {row.stripe_payment_method_id: row for row in session.exec(select(PaymentMethod))}
    assert set(rows) == {first, second}
    assert rows[second].is_default and not rows[first].is_default
    assert (rows[first].brand, rows[first].last4, rows[first].exp_month, rows[first].exp_year) == (
        "visa",
        "4242",
        12,
        2030,
    )
