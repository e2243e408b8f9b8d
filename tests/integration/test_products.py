"""Discover products: the catalogue with each product's pricing plans, sign-up, plan changes and
cancellation like the account's plan (free at once; a paid difference charged to the card, the
rest of a paid period credited back, renewed with the monthly invoice), the plan's product
limit, the card rule, and the products a user is invited to. All on Nov 22, 2026 (UTC):
9 of November's 30 days are left."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlmodel import select

from app.errors import Conflict, PermissionDenied, ValidationFailed
from app.models import Account, AccountProduct, AuditEvent, Invoice, InvoiceLine, Payment, PaymentMethod, User
from app.services import info, invoices, ledger, products, team
from app.services.accounts import builtin_role
from app.services.overview import billing_settings
from app.services.subscription import CardRequired
from tests.factories import actor_for, make_user
from tests.stripe_fixtures import raw_card, save_card

NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)


@pytest.fixture
def owner_email() -> str:
    return "olivia@example.com"


def _on_plan(session, account_id: int, plan_code: str, *, with_card: bool = True) -> None:
    account = session.get(Account, account_id)
    account.plan_code = plan_code
    session.add(account)
    if with_card:
        session.add(
            PaymentMethod(
                account_id=account_id,
                stripe_payment_method_id=f"pm_{account_id}",
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=2030,
                is_default=True,
            )
        )
    session.commit()


def test_the_catalogue_compares_plans_and_marks_what_the_account_has(session, owner):
    actor = owner.actor
    cards = {card.code: card for card in products.catalogue(session, actor)}
    assert list(cards) == ["metering", "analytics", "alerts", "vault"]
    assert cards["metering"].has_it and [p.current for p in cards["metering"].plans] == [True]
    analytics = cards["analytics"]
    assert not analytics.has_it
    assert [(p.name, p.price) for p in analytics.plans] == [("Free", "Free"), ("Standard", "$19.00 per month")]
    assert "CSV export" in analytics.plans[1].features


def _change(session, actor, product_code, plan_code, key="k1", **kwargs):
    result = products.change(session, actor, product_code, plan_code, request_key=key, now=NOW, **kwargs)
    session.commit()
    return result


def _plans(session) -> dict[str, str]:
    return {row.product_code: row.plan_code for row in session.exec(select(AccountProduct))}


def test_a_free_plan_starts_at_once_without_an_invoice(session, owner):
    actor = owner.actor
    quote = products.quote(session, actor, "analytics", "free", now=NOW)
    assert (quote.amount_cents, quote.lines) == (0, ("Usage Analytics Free is free. It starts at once.",))
    result = _change(session, actor, "analytics", "free", expected_amount_cents=0)
    assert (result.status, result.notice) == ("applied", "You signed up for Usage Analytics.")
    assert _plans(session) == {"analytics": "free"}
    assert session.exec(select(Invoice)).all() == []
    cards = {card.code: card for card in products.catalogue(session, actor)}
    assert cards["analytics"].has_it and [p.current for p in cards["analytics"].plans] == [True, False]
    assert session.exec(select(AuditEvent.summary)).all() == ["Signed up for Usage Analytics Free (free)"]


def test_a_paid_plan_is_charged_to_the_card_like_a_plan_change_and_renews_monthly(session, owner, localstripe):
    actor, account = owner
    _on_plan(session, actor.account_id, "pro", with_card=False)
    save_card(session, account, "pm_card_visa")
    quote = products.quote(session, actor, "analytics", "standard", now=NOW)
    assert quote.amount_cents == 570  # $19.00 × 9/30
    assert "Charged now to Visa •••• 4242 for the rest of this month: $5.70." in quote.lines
    result = _change(session, actor, "analytics", "standard", expected_amount_cents=570)
    assert result.status == "succeeded" and result.amount_cents == 570
    assert result.notice == (
        "You signed up for Usage Analytics. $5.70 was charged to your card; the paid invoice is on the Invoices page."
    )
    [invoice] = session.exec(select(Invoice)).all()
    assert (invoice.status, invoice.total_cents, invoice.source) == ("paid", 570, "product")
    assert session.exec(select(AuditEvent.summary)).all() == [
        "Signed up for Usage Analytics Standard ($5.70 charged): succeeded"
    ]
    [payment] = session.exec(select(Payment)).all()
    assert (payment.method, payment.status, payment.invoice_id) == ("invoice", "succeeded", invoice.id)
    [line] = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
    assert line.description == "Usage Analytics Standard, Nov 22 – Nov 30, 2026"
    # The same confirmation again charges nothing more.
    assert _change(session, actor, "analytics", "standard").status == "succeeded"
    assert len(session.exec(select(Payment)).all()) == 1

    renewal = invoices.close_period(session, actor.account_id, date(2026, 12, 1), now=datetime(2026, 12, 1, tzinfo=UTC))
    lines = session.exec(
        select(InvoiceLine.description, InvoiceLine.amount_cents).where(InvoiceLine.invoice_id == renewal.id)
    ).all()
    assert ("Usage Analytics Standard, Dec 1 – Dec 31, 2026", 1_900) in lines


def test_a_declined_card_changes_nothing(session, owner, localstripe):
    actor, account = owner
    _on_plan(session, actor.account_id, "pro", with_card=False)
    save_card(session, account, "pm_card_chargeCustomerFail")
    result = _change(session, actor, "alerts", "pro")
    assert result.status == "failed" and result.message
    assert _plans(session) == {}
    assert [invoice.status for invoice in session.exec(select(Invoice))] == ["void"]
    assert session.exec(select(AuditEvent.summary)).all() == [
        "Signed up for Smart Alerts Pro ($2.70 charged): declined, nothing changed"
    ]


def _authenticate(localstripe: str, result: products.ProductResult, *, success: bool) -> None:
    """What Stripe.js does in the page: the 3-D Secure step, passed or failed."""
    httpx.post(
        f"{localstripe}/v1/payment_intents/{result.payment_intent_id}/_authenticate",
        data={"client_secret": result.client_secret, "success": "true" if success else "false"},
        auth=("sk_test_localstripe", ""),
    ).raise_for_status()


def test_a_charge_that_needs_3d_secure_is_finished_by_asking_again_and_a_failed_one_changes_nothing(
    session, owner, localstripe
):
    actor, account = owner
    _on_plan(session, actor.account_id, "pro", with_card=False)
    save_card(session, account, raw_card(localstripe, "4000002500003155"))
    started = _change(session, actor, "analytics", "standard", key="sign-up")
    assert started.status == "requires_action" and started.client_secret.startswith(started.payment_intent_id)
    # Asked again before the browser's step: still waiting, nothing charged twice.
    assert _change(session, actor, "analytics", "standard", key="sign-up").status == "requires_action"
    _authenticate(localstripe, started, success=True)
    finished = _change(session, actor, "analytics", "standard", key="sign-up")
    assert finished.status == "succeeded"
    assert finished.notice == (
        "Usage Analytics is active on Standard. $5.70 was charged to your card; the paid invoice is on the "
        "Invoices page."
    )
    assert _plans(session) == {"analytics": "standard"}
    assert [invoice.status for invoice in session.exec(select(Invoice))] == ["paid"]

    # Smart Alerts from Free to Pro needs 3-D Secure too, and the card holder fails it: back to Free.
    _change(session, actor, "alerts", "free", key="alerts-free")
    upgrade = _change(session, actor, "alerts", "pro", key="upgrade")
    assert upgrade.status == "requires_action"
    assert _plans(session) == {"analytics": "standard", "alerts": "pro"}
    _authenticate(localstripe, upgrade, success=False)
    failed = _change(session, actor, "alerts", "pro", key="upgrade")
    assert failed.status == "failed" and failed.notice == ""
    assert _plans(session) == {"analytics": "standard", "alerts": "free"}
    assert [invoice.status for invoice in session.exec(select(Invoice).order_by(Invoice.id))] == ["paid", "void"]
    log = session.exec(select(AuditEvent.summary).order_by(AuditEvent.id)).all()
    assert log[-1] == "Smart Alerts: not authenticated, nothing changed"
    # Asked once more, it stays as it is.
    assert _change(session, actor, "alerts", "pro", key="upgrade").status == "failed"
    assert _plans(session) == {"analytics": "standard", "alerts": "free"}
    assert len(session.exec(select(AuditEvent)).all()) == len(log)


def test_a_products_plan_is_changed_and_cancelled_crediting_only_what_was_paid(session, owner, localstripe):
    actor, account = owner
    _on_plan(session, actor.account_id, "pro", with_card=False)
    save_card(session, account, "pm_card_visa")
    _change(session, actor, "analytics", "free", key="a")
    # Free to Standard: the difference for the rest of the month, charged.
    upgrade = _change(session, actor, "analytics", "standard", key="b")
    assert (upgrade.status, upgrade.amount_cents) == ("succeeded", 570)
    assert _plans(session) == {"analytics": "standard"}
    # Back to Free: the rest of the month that was paid comes back as usage credits.
    quote = products.quote(session, actor, "analytics", "free", now=NOW)
    assert (quote.amount_cents, quote.credited_cents) == (-570, 570)
    assert "Credited to your balance now: $5.70." in quote.lines
    downgrade = _change(session, actor, "analytics", "free", key="c")
    assert downgrade.notice == (
        "Usage Analytics is now on Free. $5.70 was credited to your balance; it is listed in Balance History."
    )
    assert ledger.balance_of(session, account.id) == 570
    # Standard again, charged again; cancelling gives back the rest that this second payment bought.
    _change(session, actor, "analytics", "standard", key="d")
    cancel = products.quote(session, actor, "analytics", products.CANCEL, now=NOW)
    assert (cancel.title, cancel.credited_cents) == ("Cancel Usage Analytics", 570)
    assert _change(session, actor, "analytics", products.CANCEL, key="e").notice.startswith(
        "You cancelled Usage Analytics. $5.70 was credited"
    )
    assert _plans(session) == {}
    assert ledger.balance_of(session, account.id) == 1_140 == ledger.ledger_sum(session, account.id)
    paid = sum(i.total_cents for i in session.exec(select(Invoice)) if i.status == "paid")
    assert paid == 1_140  # credits given back never exceed what was paid
    with pytest.raises(Conflict, match="part of every account"):
        products.quote(session, actor, "metering", products.CANCEL, now=NOW)


def test_signing_up_twice_or_beyond_the_plans_limit_is_refused_and_changes_nothing(session, owner):
    actor = owner.actor
    _change(session, actor, "analytics", "free")
    with pytest.raises(Conflict, match="You are already on Usage Analytics Free."):
        products.change(session, actor, "analytics", "free", request_key="k2", now=NOW)
    session.rollback()
    # Basic includes 2 products: the core one and Analytics.
    with pytest.raises(Conflict, match="Account limit reached: your Basic plan includes 2 products"):
        products.change(session, actor, "alerts", "free", request_key="k3", now=NOW)
    session.rollback()
    assert _plans(session) == {"analytics": "free"}
    limits = {row.key: row for row in info.account_info(session, actor).limits}
    assert (limits["products"].used, limits["products"].limit, limits["products"].reached) == (2, 2, True)


def test_a_paid_plan_needs_a_payment_method_and_the_amount_shown(session, owner):
    actor = owner.actor
    _on_plan(session, actor.account_id, "pro", with_card=False)
    with pytest.raises(CardRequired):
        products.change(session, actor, "alerts", "pro", request_key="k1", now=NOW)
    session.rollback()
    _on_plan(session, actor.account_id, "pro")
    with pytest.raises(ValidationFailed, match="The amount has changed"):
        products.change(session, actor, "alerts", "pro", request_key="k1", expected_amount_cents=1, now=NOW)
    session.rollback()
    assert session.exec(select(AccountProduct)).all() == [] and session.exec(select(Invoice)).all() == []


def test_invoice_priced_accounts_are_invoiced_without_a_card(session, owner):
    actor = owner.actor
    _on_plan(session, actor.account_id, "custom", with_card=False)
    billing_settings(session, actor.account_id).invoice_priced = True
    session.commit()
    result = _change(session, actor, "vault", "plus")
    assert result.notice.endswith("The invoice for the rest of this month is on the Invoices page.")
    assert [invoice.status for invoice in session.exec(select(Invoice))] == ["open"]
    assert session.exec(select(Payment)).all() == []


def test_only_who_may_change_the_plan_signs_up(session, owner):
    actor = owner.actor
    admin = actor_for(make_user(session, session.get(Account, actor.account_id), "adam@example.com", "admin"), "admin")
    member = actor_for(make_user(session, session.get(Account, actor.account_id), "mo@example.com", "member"), "member")
    session.commit()
    assert _change(session, admin, "alerts", "free").status == "applied"
    with pytest.raises(PermissionDenied):
        products.catalogue(session, member)
    with pytest.raises(PermissionDenied):
        products.change(session, member, "vault", "starter", request_key="k9", now=NOW)


def test_an_invitation_names_the_products_the_user_may_use(session, owner):
    actor = owner.actor
    _on_plan(session, actor.account_id, "pro")
    _change(session, actor, "analytics", "free", key="i1")
    _change(session, actor, "alerts", "free", key="i2")
    member_role = builtin_role(session, "member").id

    def invite(email: str, chosen):
        return team.invite(
            session, actor, email=email, full_name="New User", role_id=member_role, base_url="http://x", products=chosen
        )

    some = invite("some@example.com", ["metering", "alerts"])
    everything = invite("all@example.com", ["metering", "analytics", "alerts"])
    session.commit()
    assert team.product_access(session, some) == ["metering", "alerts"]
    assert (everything.products, team.product_access(session, everything)) == ("", ["metering", "analytics", "alerts"])

    with pytest.raises(ValidationFailed) as none_chosen:
        invite("none@example.com", [])
    assert none_chosen.value.field == "products"
    session.rollback()
    with pytest.raises(ValidationFailed, match="does not have vault"):
        invite("vault@example.com", ["metering", "vault"])
    session.rollback()
    assert session.exec(select(User.email).where(User.email.in_(("none@example.com", "vault@example.com")))).all() == []
