"""Auto Recharge against a real localstripe process: the settings form, the recharge job (one
charge however many debits cross the threshold, a crash in the middle, a webhook racing the job),
the failure path to auto-disable, and the demo data. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, select

from app.config import get_settings
from app.demo import auto_recharge as demo_auto_recharge
from app.errors import Conflict, FormInvalid, PermissionDenied
from app.jobs import handlers  # noqa: F401  registers the job handlers
from app.jobs import recharge as recharge_job
from app.jobs.queue import run_due_jobs
from app.models import Account, BillingSettings, CreditBalance, Job, LedgerEntry, OutboxEmail, Payment, utcnow
from app.payments import gateway
from app.seed import seed_demo
from app.services import billing_overview, ledger, payment_methods, recharge, refunds
from app.services.customers import stripe_customer_id
from app.services.notices import notices_for
from app.services.overview import billing_settings
from tests.factories import grant, make_account, make_user
from tests.metrics import sample
from tests.stripe_fixtures import (
    actor_for,
    event,
    owner_and_account,
    post_event,
    raw_card,
    save_card,
    stripe_intent,
    webhook_reports_the_decline_first,
)

pytestmark = pytest.mark.usefixtures("localstripe")  # the owner's account is billed through (local) Stripe

DECLINES_ON_CHARGE = "4000000000000341"
NOT_DOLLARS = "Enter an amount in dollars, such as 25 or 25.50."


def _fund(session: Session, account_id: int, cents: int) -> None:
    grant(session, account_id, cents, description="Opening", key=f"open-{account_id}")
    session.commit()


def _row(session: Session, account_id: int) -> CreditBalance:
    return session.get(CreditBalance, account_id, populate_existing=True)


def _settings(session: Session, account_id: int) -> BillingSettings:
    session.expire_all()
    return billing_settings(session, account_id)


def _payments(session: Session, account_id: int) -> list[Payment]:
    return list(session.exec(select(Payment).where(Payment.account_id == account_id).order_by(Payment.id)))


def _recharge_entries(session: Session, account_id: int) -> list[LedgerEntry]:
    return list(
        session.exec(
            select(LedgerEntry).where(LedgerEntry.account_id == account_id, LedgerEntry.source == "auto_recharge")
        )
    )


def _recharge_jobs(session: Session) -> list[Job]:
    return list(session.exec(select(Job).where(Job.kind == "auto_recharge").order_by(Job.id)).all())


def _emails(session: Session, account_id: int) -> list[OutboxEmail]:
    return list(session.exec(select(OutboxEmail).where(OutboxEmail.account_id == account_id).order_by(OutboxEmail.id)))


def _stripe_intents(base_url: str, customer_id: str) -> list[dict]:
    """The customer's PaymentIntents as localstripe holds them."""
    intents, params = [], {"limit": 100}
    while True:
        auth = (get_settings().stripe_secret_key, "")
        page = httpx.get(f"{base_url}/v1/payment_intents", params=params, auth=auth).json()
        intents += [pi for pi in page["data"] if pi["customer"] == customer_id]
        if not page["has_more"]:
            return intents
        params["starting_after"] = page["data"][-1]["id"]


def _intent_object(intent_id: str, status: str, metadata: dict) -> dict:
    """A PaymentIntent as a webhook event carries it."""
    return {**stripe_intent(intent_id), "status": status, "metadata": metadata}


def _run_jobs(session: Session, engine, **kwargs) -> int:
    """Due jobs, after ending the test's own transaction (on SQLite it holds the write lock);
    how many ran, not counting the emails of the receipts that successful recharges issue."""
    receipts = select(Job).where(Job.kind == "invoice_issued", Job.status == "done")
    before = len(session.exec(receipts).all())
    session.commit()
    ran = run_due_jobs(engine, **kwargs)
    emailed = len(session.exec(receipts).all()) - before
    session.commit()
    return ran - emailed


def _assert_balanced(session: Session, account_id: int) -> None:
    assert ledger.balance_of(session, account_id) == ledger.ledger_sum(session, account_id)


# The settings form


def test_enabling_below_the_threshold_charges_the_default_card_at_once(session, engine, owner, localstripe):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    charged = sample("ledgerdesk_off_session_charges_total", purpose="auto_recharge", outcome="succeeded")
    created = sample("ledgerdesk_stripe_calls_total", operation="PaymentIntentService.create", outcome="ok")

    assert recharge.save_settings(session, actor, True, "20", "50") is True
    session.commit()
    assert _row(session, account.id).recharge_threshold_cents == 2_000
    assert _run_jobs(session, engine) == 1
    # Counted for /metrics: one charge that succeeded, one PaymentIntent created.
    assert sample("ledgerdesk_off_session_charges_total", purpose="auto_recharge", outcome="succeeded") == charged + 1
    assert sample("ledgerdesk_stripe_calls_total", operation="PaymentIntentService.create", outcome="ok") == created + 1

    session.expire_all()
    assert ledger.balance_of(session, account.id) == 5_000
    _assert_balanced(session, account.id)
    [payment] = _payments(session, account.id)
    assert (payment.method, payment.status, payment.amount_cents) == ("auto_recharge", "succeeded", 5_000)
    [entry] = _recharge_entries(session, account.id)
    assert entry.amount_cents == 5_000
    assert entry.description == f"Stripe Payment Intent {payment.stripe_payment_intent_id} via Auto Recharge call."
    [intent] = _stripe_intents(localstripe, stripe_customer_id(session, account.id))
    assert intent["id"] == payment.stripe_payment_intent_id and intent["status"] == "succeeded"
    assert intent["amount"] == 5_000
    view = recharge.recharge_settings(session, actor)
    assert view.enabled and not view.in_flight and view.balance_cents == 5_000
    assert view.default_card.endswith("4242 (default)")


def test_enabling_above_the_threshold_charges_nothing_until_a_debit_crosses_it(session, engine, owner, localstripe):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _fund(session, account.id, 3_000)

    assert recharge.save_settings(session, actor, True, "$20.00", "50") is False
    session.commit()
    assert _run_jobs(session, engine) == 0
    ledger.debit_usage(session, account_id=account.id, amount_cents=999, idempotency_key="u1")
    session.commit()
    assert _run_jobs(session, engine) == 0  # $20.01 left: not yet
    ledger.debit_usage(session, account_id=account.id, amount_cents=1, idempotency_key="u2")
    session.commit()
    assert _run_jobs(session, engine) == 1

    session.expire_all()
    assert ledger.balance_of(session, account.id) == 2_000 + 5_000
    assert len(_payments(session, account.id)) == 1
    _assert_balanced(session, account.id)


def test_a_rerun_of_the_job_after_success_charges_nothing(session, engine, owner, localstripe):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    _run_jobs(session, engine)

    with Session(engine, expire_on_commit=False) as rerun:
        recharge.run_recharge(rerun, account.id, 1)
        rerun.commit()

    session.expire_all()
    assert ledger.balance_of(session, account.id) == 5_000
    assert len(_payments(session, account.id)) == 1
    assert len(_stripe_intents(localstripe, stripe_customer_id(session, account.id))) == 1


@pytest.mark.parametrize(
    ("threshold", "amount", "errors"),
    [
        ("20", "4.99", {"amount": "Enter an amount between $5 and $5000."}),
        ("20", "5000.01", {"amount": "Enter an amount between $5 and $5000."}),
        ("5000.01", "50", {"threshold": "Enter a threshold between $0 and $5000."}),
        ("-5", "50", {"threshold": NOT_DOLLARS}),
        ("", "", {"threshold": NOT_DOLLARS, "amount": NOT_DOLLARS}),
    ],
    ids=["amount-too-low", "amount-too-high", "threshold-too-high", "negative-threshold", "both-empty"],
)
def test_bad_amounts_are_field_errors_and_change_nothing(session, owner, threshold, amount, errors):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    with pytest.raises(FormInvalid) as refused:
        recharge.save_settings(session, actor, True, threshold, amount)
    session.rollback()
    assert refused.value.errors == errors
    settings = _settings(session, account.id)
    assert not settings.auto_recharge_enabled and settings.auto_recharge_amount_cents == 0
    assert _row(session, account.id) is None or _row(session, account.id).recharge_threshold_cents is None
    assert _recharge_jobs(session) == []


def test_the_bounds_are_accepted(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _fund(session, account.id, 600_000)
    for threshold, amount, cents in (("0", "5", (0, 500)), ("4,999.99", "5000", (499_999, 500_000))):
        recharge.save_settings(session, actor, True, threshold, amount)
        session.commit()
        settings = _settings(session, account.id)
        assert (settings.auto_recharge_threshold_cents, settings.auto_recharge_amount_cents) == cents


@pytest.mark.parametrize(
    ("plan", "threshold", "amount", "message"),
    [
        (
            "basic",
            "50",
            "5",
            "Enter an amount above $50.00, so that one recharge lifts your balance above the $50.00 threshold "
            "even from $0.00, the lowest balance usage can reach.",
        ),
        (
            "basic",
            "50",
            "50",
            "Enter an amount above $50.00, so that one recharge lifts your balance above the $50.00 threshold "
            "even from $0.00, the lowest balance usage can reach.",
        ),
        (
            "pro",
            "20",
            "70",
            "Enter an amount above $70.00, so that one recharge lifts your balance above the $20.00 threshold "
            "even from -$50.00, the lowest balance usage can reach.",
        ),
        (
            "basic",
            "5000",
            "5000",
            "Enter an amount above $5,000.00, so that one recharge lifts your balance above the $5,000.00 threshold "
            "even from $0.00, the lowest balance usage can reach. A recharge is at most $5,000.00, so lower the "
            "threshold.",
        ),
    ],
    ids=["below-the-threshold", "equal-to-the-threshold", "short-of-the-overage-line", "threshold-at-the-maximum"],
)
def test_an_amount_that_cannot_lift_the_balance_above_the_threshold_is_refused_at_save(
    session, engine, owner, plan, threshold, amount, message
):
    actor, account = owner
    account.plan_code = plan
    session.add(account)
    session.commit()
    save_card(session, account, "pm_card_visa")
    with pytest.raises(FormInvalid) as refused:
        recharge.save_settings(session, actor, True, threshold, amount)
    session.rollback()
    assert refused.value.errors == {"amount": message}
    assert not _settings(session, account.id).auto_recharge_enabled
    assert _run_jobs(session, engine) == 0 and _payments(session, account.id) == []


def test_the_smallest_amount_that_lifts_the_balance_is_accepted_and_one_recharge_does(session, engine, owner):
    actor, account = owner
    account.plan_code = "pro"
    session.add(account)
    session.commit()
    save_card(session, account, "pm_card_visa")
    ledger.debit_usage(session, account_id=account.id, amount_cents=5_000, idempotency_key="to-the-line")
    session.commit()
    assert ledger.balance_of(session, account.id) == -5_000  # the Pro plan's overage line

    assert recharge.save_settings(session, actor, True, "20", "70.01") is True
    assert _run_jobs(session, engine) == 1
    session.expire_all()
    assert ledger.balance_of(session, account.id) == 2_001  # above the $20 threshold after one recharge
    assert len(_payments(session, account.id)) == 1
    assert recharge.recharge_settings(session, actor).overage_line_cents == 5_000


def test_a_member_cannot_see_or_save_auto_recharge(session, owner):
    _, account = owner
    save_card(session, account, "pm_card_visa")
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    with pytest.raises(PermissionDenied):
        recharge.save_settings(session, member, True, "20", "50")
    with pytest.raises(PermissionDenied):
        recharge.recharge_settings(session, member)
    session.rollback()
    assert not _settings(session, account.id).auto_recharge_enabled


def test_an_invoice_priced_account_is_refused(session, owner):
    actor, account = owner
    billing_settings(session, account.id).invoice_priced = True
    session.commit()
    with pytest.raises(Conflict) as refused:
        recharge.save_settings(session, actor, True, "20", "50")
    assert refused.value.message == "Your account pays by invoice, so auto recharge is not available."
    session.rollback()
    assert not _settings(session, account.id).auto_recharge_enabled
    assert recharge.recharge_settings(session, actor).invoice_priced


def test_without_a_default_card_it_cannot_be_turned_on(session, owner):
    actor, account = owner
    with pytest.raises(recharge.NoDefaultCard) as refused:
        recharge.save_settings(session, actor, True, "20", "50")
    assert "Add a card on the Payment Methods page" in refused.value.message
    session.rollback()
    assert not billing_settings(session, account.id).auto_recharge_enabled
    assert recharge.recharge_settings(session, actor).default_card == ""


def test_turning_it_off_disarms_the_threshold_and_keeps_the_amounts(session, engine, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _fund(session, account.id, 10_000)
    recharge.save_settings(session, actor, True, "20", "50")
    recharge.save_settings(session, actor, False, "", "")
    session.commit()
    settings = _settings(session, account.id)
    assert not settings.auto_recharge_enabled
    assert (settings.auto_recharge_threshold_cents, settings.auto_recharge_amount_cents) == (2_000, 5_000)
    assert _row(session, account.id).recharge_threshold_cents is None
    ledger.debit(session, account_id=account.id, amount_cents=9_000, idempotency_key="big")
    session.commit()
    assert _recharge_jobs(session) == []


def test_a_recharge_turned_off_before_its_job_runs_charges_nothing(session, engine, owner, localstripe):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    recharge.save_settings(session, actor, False, "", "")
    session.commit()
    assert _run_jobs(session, engine) == 1

    session.expire_all()
    assert _payments(session, account.id) == [] and ledger.balance_of(session, account.id) == 0
    assert not _row(session, account.id).recharge_in_flight
    assert _stripe_intents(localstripe, stripe_customer_id(session, account.id)) == []


def test_a_recharge_past_the_plans_monthly_credits_is_not_made_and_turns_auto_recharge_off(
    session, engine, owner, localstripe
):
    """Basic includes $500 of usage credits a month: with $480 bought this month, a $50 recharge
    charges nothing; auto recharge is turned off with the limit named, and the contacts told."""
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    ledger.credit(
        session,
        account_id=account.id,
        amount_cents=48_000,
        source="purchase",
        description="Crypto top-up",
        idempotency_key="stripe:cs:this-month",
    )
    ledger.debit(session, account_id=account.id, amount_cents=47_000, idempotency_key="spent")
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    assert _run_jobs(session, engine) >= 1

    session.expire_all()
    assert _payments(session, account.id) == []
    assert _stripe_intents(localstripe, stripe_customer_id(session, account.id)) == []
    settings = _settings(session, account.id)
    assert not settings.auto_recharge_enabled
    assert settings.auto_recharge_disabled_reason.startswith(
        "Turned off: this recharge of $50.00 was not made. Account limit reached: your Basic plan includes $500.00"
    )
    assert any(email.subject == "Auto recharge turned off" for email in _emails(session, account.id))


# The monthly ceiling

PAUSED_SUBJECT = "Auto recharge paused for this month"


def _paused_emails(session: Session, account_id: int) -> list[OutboxEmail]:
    return [email for email in _emails(session, account_id) if email.subject == PAUSED_SUBJECT]


def _spend_to_the_threshold(session: Session, engine, account_id: int, key: str) -> int:
    """Debit the balance down to $20 (the threshold), then run the jobs; how many ran."""
    amount = ledger.balance_of(session, account_id) - 2_000
    ledger.debit(session, account_id=account_id, amount_cents=amount, idempotency_key=key)
    return _run_jobs(session, engine)


def _paused_at_a_100_ceiling(session: Session, engine, owner) -> None:
    """$50 recharges under a $100 ceiling: two are made, the third pauses auto recharge."""
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    assert recharge.save_settings(session, actor, True, "20", "50", "100") is True
    session.commit()
    assert _run_jobs(session, engine) == 1
    assert _spend_to_the_threshold(session, engine, account.id, "spend-1") == 1
    assert _spend_to_the_threshold(session, engine, account.id, "spend-2") == 1
    session.expire_all()


def test_a_recharge_past_the_monthly_ceiling_is_not_made_and_pauses_auto_recharge(session, engine, owner, localstripe):
    actor, account = owner
    _paused_at_a_100_ceiling(session, engine, owner)

    assert [p.amount_cents for p in _payments(session, account.id)] == [5_000, 5_000]
    assert len(_stripe_intents(localstripe, stripe_customer_id(session, account.id))) == 2
    assert ledger.balance_of(session, account.id) == 2_000
    _assert_balanced(session, account.id)
    resumes = recharge.next_month_start(utcnow())
    reason = (
        "Paused: this month's automatic top-ups reached your $100.00 ceiling; resumes on "
        f"{resumes:%b} 1, {resumes.year}."
    )
    view = recharge.recharge_settings(session, actor)
    assert view.enabled and view.ceiling_cents == 10_000 and view.paused_reason == reason
    # The Overview shows it on loading and on its next live update alike.
    assert billing_overview.overview_view(session, actor).live.auto_recharge_reason == reason
    assert billing_overview.live_figures(session, actor).auto_recharge_reason == reason
    assert "auto_recharge_paused" in [notice.key for notice in notices_for(session, actor)]
    [email] = _paused_emails(session, account.id)
    assert "would take this month's automatic top-ups past your ceiling of $100.00" in email.body_text
    assert reason in email.body_text

    # Paused, the threshold is disarmed: further usage starts nothing, and saving the same
    # ceiling again neither charges nor emails again.
    ledger.debit(session, account_id=account.id, amount_cents=1_000, idempotency_key="spend-3")
    assert _run_jobs(session, engine) == 0
    assert recharge.save_settings(session, actor, True, "20", "50", "100") is False
    session.commit()
    assert _run_jobs(session, engine) == 0
    session.expire_all()
    assert len(_payments(session, account.id)) == 2 and len(_paused_emails(session, account.id)) == 1
    assert recharge.recharge_settings(session, actor).paused_reason == reason


def test_a_paused_auto_recharge_resumes_next_month(session, engine, owner, localstripe, monkeypatch):
    actor, account = owner
    _paused_at_a_100_ceiling(session, engine, owner)
    next_month = recharge.next_month_start(utcnow()) + timedelta(minutes=1)
    monkeypatch.setattr(recharge_job, "utcnow", lambda: next_month)

    # The resume job arms the threshold again; the balance is at it, so a recharge is made.
    assert _run_jobs(session, engine, now=lambda: next_month) == 2
    session.expire_all()
    assert [p.status for p in _payments(session, account.id)] == ["succeeded"] * 3
    assert recharge.recharge_settings(session, actor, next_month).paused_reason == ""
    assert _row(session, account.id).recharge_threshold_cents == 2_000

    assert len(_paused_emails(session, account.id)) == 1


def test_a_refunded_recharge_no_longer_counts_toward_the_ceiling(session, engine, owner, localstripe):
    actor, account = owner
    _paused_at_a_100_ceiling(session, engine, owner)
    first = _payments(session, account.id)[0]
    refunds.charge_refunded(session, first, charge_id="ch_refunded", refunded_cents=first.amount_cents)
    session.commit()
    assert recharge.month_recharged_cents(session, account.id, utcnow()) == 5_000

    # Saving the same ceiling again: the next $50 fits under it now, so the pause ends and it is made.
    assert recharge.save_settings(session, actor, True, "20", "50", "100") is True
    session.commit()
    assert _run_jobs(session, engine) == 1
    session.expire_all()
    assert [p.status for p in _payments(session, account.id)] == ["refunded", "succeeded", "succeeded"]
    assert recharge.recharge_settings(session, actor).paused_reason == ""
    _assert_balanced(session, account.id)


@pytest.mark.parametrize("ceiling", ["150", ""], ids=["raised", "cleared"])
def test_raising_or_clearing_the_ceiling_resumes_at_once(session, engine, owner, localstripe, ceiling):
    actor, account = owner
    _paused_at_a_100_ceiling(session, engine, owner)

    assert recharge.save_settings(session, actor, True, "20", "50", ceiling) is True
    session.commit()
    assert _run_jobs(session, engine) == 1
    session.expire_all()
    assert [p.status for p in _payments(session, account.id)] == ["succeeded"] * 3
    assert recharge.recharge_settings(session, actor).paused_reason == ""
    assert "auto_recharge_paused" not in [notice.key for notice in notices_for(session, actor)]
    assert ledger.balance_of(session, account.id) == 7_000


@pytest.mark.parametrize(
    ("ceiling", "error"),
    [
        ("lots", NOT_DOLLARS),
        ("49.99", "Enter a ceiling from the amount to add ($50.00) to $100,000.00, or leave it empty for no ceiling."),
        (
            "100000.01",
            "Enter a ceiling from the amount to add ($50.00) to $100,000.00, or leave it empty for no ceiling.",
        ),
    ],
    ids=["not-dollars", "below-one-recharge", "too-high"],
)
def test_a_bad_ceiling_is_a_field_error_and_changes_nothing(session, engine, owner, localstripe, ceiling, error):
    actor, account = owner
    _paused_at_a_100_ceiling(session, engine, owner)

    with pytest.raises(FormInvalid) as refused:
        recharge.save_settings(session, actor, True, "10", "60", ceiling)
    session.rollback()
    assert refused.value.errors == {"ceiling": error.replace("$50.00", "$60.00")}
    settings = _settings(session, account.id)
    assert settings.auto_recharge_monthly_ceiling_cents == 10_000
    assert (settings.auto_recharge_threshold_cents, settings.auto_recharge_amount_cents) == (2_000, 5_000)
    assert recharge.recharge_settings(session, actor).paused_reason.startswith("Paused:")
    assert len(_payments(session, account.id)) == 2


def test_concurrent_debits_and_job_runners_never_charge_past_the_ceiling(pg_engine, localstripe):
    """Twenty threads spend and run the recharge jobs at once; then usage goes on until auto
    recharge pauses. Exactly the $100 ceiling is charged, in two $50 recharges, and one email."""
    with Session(pg_engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        save_card(session, account, "pm_card_visa")
        _fund(session, account.id, 3_000)
        recharge.save_settings(session, actor, True, "20", "50", "100")
        session.commit()

    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def spend(number: int) -> None:
        start.wait()
        try:
            for call in range(3):
                with Session(pg_engine) as own:
                    try:
                        ledger.debit(own, account_id=account.id, amount_cents=700, idempotency_key=f"c{number}-{call}")
                        own.commit()
                    except ledger.InsufficientCredits:
                        own.rollback()
                run_due_jobs(pg_engine)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(pg_engine) as session:
        for call in range(3):
            balance = ledger.balance_of(session, account.id)
            if balance > 0:
                ledger.debit(session, account_id=account.id, amount_cents=balance, idempotency_key=f"rest-{call}")
            _run_jobs(session, pg_engine)

        payments = _payments(session, account.id)
        assert [(p.amount_cents, p.status) for p in payments] == [(5_000, "succeeded")] * 2
        assert len(_recharge_entries(session, account.id)) == 2
        assert ledger.balance_of(session, account.id) == ledger.ledger_sum(session, account.id)
        assert recharge.recharge_settings(session, actor).paused_reason.startswith("Paused:")
        assert len(_paused_emails(session, account.id)) == 1
        customer_id = stripe_customer_id(session, account.id)
    assert len(_stripe_intents(localstripe, customer_id)) == 2


# The recharge job


def test_fifty_concurrent_debits_across_the_threshold_make_one_charge(pg_engine, localstripe):
    with Session(pg_engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        save_card(session, account, "pm_card_visa")
        _fund(session, account.id, 6_000)
        recharge.save_settings(session, actor, True, "20", "50")
        session.commit()

    start = threading.Barrier(50)
    errors: list[BaseException] = []

    def debit(number: int) -> None:
        start.wait()
        try:
            with Session(pg_engine) as own:
                if number % 2:
                    ledger.debit_usage(own, account_id=account.id, amount_cents=100, idempotency_key=f"call-{number}")
                else:
                    ledger.debit(own, account_id=account.id, amount_cents=100, idempotency_key=f"call-{number}")
                own.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=debit, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    run_due_jobs(pg_engine)

    with Session(pg_engine) as session:
        assert len(_recharge_jobs(session)) == 1
        [payment] = _payments(session, account.id)
        assert payment.status == "succeeded"
        assert len(_recharge_entries(session, account.id)) == 1
        balance = ledger.balance_of(session, account.id)
        assert balance == 6_000 - 50 * 100 + 5_000 == ledger.ledger_sum(session, account.id)
        assert not _row(session, account.id).recharge_in_flight
        customer_id = stripe_customer_id(session, account.id)
    assert len(_stripe_intents(localstripe, customer_id)) == 1


def test_a_crash_after_stripe_charged_loses_nothing_and_charges_nothing_twice(
    session, engine, owner, localstripe, monkeypatch
):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    charge = gateway.create_payment_intent

    def charged_then_lost(**kwargs):
        charge(**kwargs)
        raise ConnectionResetError("the worker died before Stripe's answer was saved")

    monkeypatch.setattr(gateway, "create_payment_intent", charged_then_lost)
    clock = utcnow()
    _run_jobs(session, engine, now=lambda: clock)
    session.expire_all()
    [payment] = _payments(session, account.id)
    assert payment.status == "pending" and ledger.balance_of(session, account.id) == 0

    monkeypatch.setattr(gateway, "create_payment_intent", charge)
    later = clock + timedelta(minutes=5)
    assert _run_jobs(session, engine, now=lambda: later) == 1

    session.expire_all()
    [payment] = _payments(session, account.id)
    [intent] = _stripe_intents(localstripe, stripe_customer_id(session, account.id))
    assert payment.status == "succeeded" and payment.stripe_payment_intent_id == intent["id"]
    assert ledger.balance_of(session, account.id) == 5_000 and len(_recharge_entries(session, account.id)) == 1
    assert not _row(session, account.id).recharge_in_flight


def test_a_webhook_that_beats_the_job_credits_once(session, engine, owner, localstripe, webhook_client, monkeypatch):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    charge = gateway.create_payment_intent

    def charge_and_deliver_the_webhook_first(**kwargs):
        intent = charge(**kwargs)
        obj = _intent_object(intent.id, "succeeded", intent.metadata)
        assert post_event(webhook_client, event("payment_intent.succeeded", obj)).status_code == 200
        return intent

    monkeypatch.setattr(gateway, "create_payment_intent", charge_and_deliver_the_webhook_first)
    assert _run_jobs(session, engine) == 1
    monkeypatch.setattr(gateway, "create_payment_intent", charge)

    session.expire_all()
    [payment] = _payments(session, account.id)
    assert payment.status == "succeeded"
    assert ledger.balance_of(session, account.id) == 5_000 and len(_recharge_entries(session, account.id)) == 1
    assert not _row(session, account.id).recharge_in_flight
    assert _settings(session, account.id).auto_recharge_failures == 0
    # The same event again, after the job: still one credit.
    obj = _intent_object(payment.stripe_payment_intent_id, "succeeded", {})
    session.commit()
    post_event(webhook_client, event("payment_intent.succeeded", obj))
    session.expire_all()
    assert ledger.balance_of(session, account.id) == 5_000
    _assert_balanced(session, account.id)


def test_a_failure_reported_by_both_the_job_and_the_webhook_counts_once(
    session, engine, owner, localstripe, webhook_client, monkeypatch
):
    actor, account = owner
    save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    webhook_reports_the_decline_first(monkeypatch, webhook_client, utcnow())
    assert _run_jobs(session, engine) == 1

    session.expire_all()
    [payment] = _payments(session, account.id)
    assert payment.status == "failed" and payment.stripe_payment_intent_id
    assert _settings(session, account.id).auto_recharge_failures == 1
    assert len(_emails(session, account.id)) == 1
    assert [job.status for job in _recharge_jobs(session)] == ["done", "pending"]


def test_a_card_that_fails_to_charge_turns_auto_recharge_off_after_three_tries(
    session, engine, owner, localstripe, monkeypatch
):
    actor, account = owner
    save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))
    _fund(session, account.id, 3_000)
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    ledger.debit_usage(session, account_id=account.id, amount_cents=1_500, idempotency_key="u1")
    session.commit()
    clock = [utcnow()]
    monkeypatch.setattr(recharge_job, "utcnow", lambda: clock[0])
    failed = sample("ledgerdesk_off_session_charges_total", purpose="auto_recharge", outcome="failed")
    declined = sample("ledgerdesk_stripe_calls_total", operation="PaymentIntentService.create", outcome="declined")

    for attempt in (1, 2):
        assert _run_jobs(session, engine, now=lambda: clock[0]) == 1
        assert _run_jobs(session, engine, now=lambda: clock[0]) == 0  # the retry waits 30 minutes
        session.expire_all()
        assert _settings(session, account.id).auto_recharge_failures == attempt
        assert _settings(session, account.id).auto_recharge_enabled and _row(session, account.id).recharge_in_flight
        retry = _recharge_jobs(session)[-1]
        assert retry.status == "pending" and retry.run_at == clock[0] + timedelta(minutes=30)
        clock[0] += timedelta(minutes=31)
    assert _run_jobs(session, engine, now=lambda: clock[0]) == 1

    session.expire_all()
    payments = _payments(session, account.id)
    assert [(p.status, p.failure_message) for p in payments] == [("failed", "Your card was declined.")] * 3
    assert sample("ledgerdesk_off_session_charges_total", purpose="auto_recharge", outcome="failed") == failed + 3
    assert (
        sample("ledgerdesk_stripe_calls_total", operation="PaymentIntentService.create", outcome="declined")
        == declined + 3
    )
    assert ledger.balance_of(session, account.id) == 1_500 and _recharge_entries(session, account.id) == []
    settings, row = _settings(session, account.id), _row(session, account.id)
    assert not settings.auto_recharge_enabled and settings.auto_recharge_failures == 3
    assert (row.recharge_threshold_cents, row.recharge_in_flight) == (None, False)
    assert [job.status for job in _recharge_jobs(session)] == ["done"] * 3
    # No billing email set: the owners are told, of each failure and of the switch-off.
    emails = _emails(session, account.id)
    assert [e.to_address for e in emails] == ["owner@example.com"] * 3
    assert [e.subject for e in emails] == ["Auto recharge of $50.00 failed"] * 2 + ["Auto recharge turned off"]
    assert "Your card was declined." in emails[0].body_text
    reason = recharge.recharge_settings(session, actor).disabled_reason
    assert reason.startswith("Turned off after 3 failed charges in a row") and "Your card was declined." in reason
    assert reason in emails[-1].body_text
    # Further debits start nothing; turning it on again clears the reason and the count.
    ledger.debit_usage(session, account_id=account.id, amount_cents=100, idempotency_key="u2")
    session.commit()
    assert _run_jobs(session, engine, now=lambda: clock[0]) == 0
    save_card(session, account, "pm_card_visa")
    assert recharge.save_settings(session, actor, True, "20", "50") is True
    session.commit()
    view = recharge.recharge_settings(session, actor)
    assert view.enabled and view.disabled_reason == "" and view.failures == 0
    _run_jobs(session, engine, now=lambda: clock[0])
    session.expire_all()
    assert ledger.balance_of(session, account.id) == 1_400 + 5_000


def test_an_off_session_charge_that_asks_for_authentication_is_cancelled_and_the_customer_asked_to_pay(
    session, engine, owner, localstripe
):
    actor, account = owner
    save_card(session, account, raw_card(localstripe, "4000002500003155"))
    recharge.save_settings(session, actor, True, "20", "50")
    assert _run_jobs(session, engine) == 1

    session.expire_all()
    [payment] = _payments(session, account.id)
    assert (payment.status, payment.failure_message) == ("canceled", recharge.AUTHENTICATION_MESSAGE)
    [intent] = _stripe_intents(localstripe, stripe_customer_id(session, account.id))
    assert intent["id"] == payment.stripe_payment_intent_id and intent["status"] == "canceled"
    assert ledger.balance_of(session, account.id) == 0 and _recharge_entries(session, account.id) == []
    assert _settings(session, account.id).auto_recharge_failures == 1
    [email] = _emails(session, account.id)
    assert (email.to_address, email.subject) == ("owner@example.com", "Auto recharge of $50.00 needs you to pay")
    assert f"{get_settings().public_url}/billing/add-usage-credits" in email.body_text
    assert "nothing was taken" in email.body_text


def test_real_stripes_off_session_authentication_decline_is_cancelled_too(session, engine, owner, monkeypatch):
    """Real Stripe declines an off-session charge that needs 3-D Secure (code authentication_required)
    rather than leaving it waiting as localstripe does."""
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    cancelled: list[str] = []

    def declined(**_):
        raise gateway.CardDeclined(
            "This payment requires authentication.", payment_intent_id="pi_auth", authentication_required=True
        )

    def cancel(intent_id):
        cancelled.append(intent_id)
        return gateway.Intent(id=intent_id, status="canceled", amount_cents=5_000)

    monkeypatch.setattr(gateway, "create_payment_intent", declined)
    monkeypatch.setattr(gateway, "find_payment_intent", lambda *_: None)
    monkeypatch.setattr(gateway, "cancel_payment_intent", cancel)
    recharge.save_settings(session, actor, True, "20", "50")
    assert _run_jobs(session, engine) == 1

    session.expire_all()
    assert cancelled == ["pi_auth"]
    [payment] = _payments(session, account.id)
    assert (payment.status, payment.stripe_payment_intent_id) == ("canceled", "pi_auth")
    assert [e.subject for e in _emails(session, account.id)] == ["Auto recharge of $50.00 needs you to pay"]


def test_saving_again_releases_a_recharge_whose_job_failed_for_good(session, engine, owner, localstripe):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    [job] = _recharge_jobs(session)
    job.status = "failed"  # e.g. Stripe unreachable through every attempt
    session.add(job)
    session.commit()
    assert _row(session, account.id).recharge_in_flight

    assert recharge.save_settings(session, actor, True, "20", "50") is True
    assert _run_jobs(session, engine) == 1
    session.expire_all()
    assert ledger.balance_of(session, account.id) == 5_000
    assert [p.idempotency_key for p in _payments(session, account.id)] == [f"auto_recharge:{account.id}:2"]


def test_a_failure_is_emailed_to_the_billing_email_when_set(session, engine, owner, localstripe):
    actor, account = owner
    save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))
    billing_settings(session, account.id).billing_email = "billing@acme.example"
    session.commit()
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    _run_jobs(session, engine)
    session.expire_all()
    [email] = _emails(session, account.id)
    assert email.to_address == "billing@acme.example" and email.subject == "Auto recharge of $50.00 failed"


def test_a_card_removed_before_the_job_runs_turns_auto_recharge_off(session, engine, owner, localstripe):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    recharge.save_settings(session, actor, True, "20", "50")
    session.commit()
    gateway.set_default_payment_method(stripe_customer_id(session, account.id), "")
    gateway.detach_payment_method(card)
    payment_methods.sync_payment_methods(session, account.id)
    session.commit()
    assert _run_jobs(session, engine) == 1

    session.expire_all()
    assert _payments(session, account.id) == []
    row = _row(session, account.id)
    assert (row.recharge_threshold_cents, row.recharge_in_flight) == (None, False)
    assert recharge.recharge_settings(session, actor).disabled_reason == recharge.NO_CARD_REASON


# Demo data


def test_the_demo_account_has_auto_recharge_on_without_being_charged(session, engine, localstripe):
    seed_demo(session)
    session.commit()
    account = session.exec(select(Account)).one()
    settings = _settings(session, account.id)
    assert settings.auto_recharge_enabled
    assert (settings.auto_recharge_threshold_cents, settings.auto_recharge_amount_cents) == (2_000, 10_000)
    row = _row(session, account.id)
    assert row.recharge_threshold_cents == 2_000 and row.balance_cents > 2_000 and not row.recharge_in_flight
    # What the form accepts: one recharge lifts the balance above $20 even from the Pro plan's -$50.
    assert settings.auto_recharge_amount_cents >= recharge.minimum_amount_cents(2_000, row.overage_credit_line_cents)
    assert _recharge_jobs(session) == [] and _payments(session, account.id) == []


def test_the_demo_account_without_a_card_keeps_auto_recharge_off(session):
    account = make_account(session, "Demo without Stripe")
    demo_auto_recharge.seed(session, account, utcnow())
    session.commit()
    assert not _settings(session, account.id).auto_recharge_enabled
    assert _row(session, account.id) is None
