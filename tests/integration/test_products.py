"""Discover products: the catalogue with each product's pricing plans, sign-up (free at once; a
paid plan invoiced for the rest of the month and renewed with the monthly invoice), the plan's
product limit, the card rule, and the products a user is invited to. All on Nov 22, 2026 (UTC):
9 of November's 30 days are left."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from app.errors import Conflict, PermissionDenied, ValidationFailed
from app.models import Account, AccountProduct, AuditEvent, Invoice, InvoiceLine, PaymentMethod, User
from app.services import info, invoices, products, team
from app.services.accounts import builtin_role
from app.services.overview import billing_settings
from app.services.subscription import CardRequired
from tests.factories import actor_for, make_user

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


def test_a_free_plan_starts_at_once_without_an_invoice(session, owner):
    actor = owner.actor
    quote = products.quote(session, actor, "analytics", "free", now=NOW)
    assert (quote.amount_cents, quote.lines) == (0, ("Usage Analytics Free is free. It starts at once.",))
    row = products.sign_up(session, actor, "analytics", "free", expected_amount_cents=0, now=NOW)
    session.commit()
    assert (row.plan_code, row.invoice_public_id) == ("free", "")
    assert session.exec(select(Invoice)).all() == []
    cards = {card.code: card for card in products.catalogue(session, actor)}
    assert cards["analytics"].has_it and [p.current for p in cards["analytics"].plans] == [True, False]
    assert session.exec(select(AuditEvent.summary)).all() == ["Signed up for Usage Analytics Free (free)"]


def test_a_paid_plan_invoices_the_rest_of_the_month_and_renews_with_the_monthly_invoice(session, owner):
    actor = owner.actor
    _on_plan(session, actor.account_id, "pro")
    quote = products.quote(session, actor, "analytics", "standard", now=NOW)
    assert quote.amount_cents == 570  # $19.00 × 9/30
    row = products.sign_up(session, actor, "analytics", "standard", expected_amount_cents=570, now=NOW)
    session.commit()
    invoice = session.exec(select(Invoice).where(Invoice.public_id == row.invoice_public_id)).one()
    assert (invoice.status, invoice.total_cents, invoice.source) == ("open", 570, "product")
    [line] = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
    assert line.description == "Usage Analytics Standard, Nov 22 – Nov 30, 2026"

    renewal = invoices.close_period(session, actor.account_id, date(2026, 12, 1), now=datetime(2026, 12, 1, tzinfo=UTC))
    lines = session.exec(
        select(InvoiceLine.description, InvoiceLine.amount_cents).where(InvoiceLine.invoice_id == renewal.id)
    ).all()
    assert ("Usage Analytics Standard, Dec 1 – Dec 31, 2026", 1_900) in lines


def test_signing_up_twice_or_beyond_the_plans_limit_is_refused_and_changes_nothing(session, owner):
    actor = owner.actor
    products.sign_up(session, actor, "analytics", "free", now=NOW)
    session.commit()
    with pytest.raises(Conflict, match="You already have Usage Analytics."):
        products.sign_up(session, actor, "analytics", "standard", now=NOW)
    session.rollback()
    # Basic includes 2 products: the core one and Analytics.
    with pytest.raises(Conflict, match="Account limit reached: your Basic plan includes 2 products"):
        products.sign_up(session, actor, "alerts", "free", now=NOW)
    session.rollback()
    assert [r.product_code for r in session.exec(select(AccountProduct))] == ["analytics"]
    limits = {row.key: row for row in info.account_info(session, actor).limits}
    assert (limits["products"].used, limits["products"].limit, limits["products"].reached) == (2, 2, True)


def test_a_paid_plan_needs_a_payment_method_and_the_amount_shown(session, owner):
    actor = owner.actor
    _on_plan(session, actor.account_id, "pro", with_card=False)
    with pytest.raises(CardRequired):
        products.sign_up(session, actor, "alerts", "pro", now=NOW)
    session.rollback()
    _on_plan(session, actor.account_id, "pro")
    with pytest.raises(ValidationFailed, match="The amount has changed"):
        products.sign_up(session, actor, "alerts", "pro", expected_amount_cents=1, now=NOW)
    session.rollback()
    assert session.exec(select(AccountProduct)).all() == [] and session.exec(select(Invoice)).all() == []


def test_invoice_priced_accounts_are_invoiced_without_a_card(session, owner):
    actor = owner.actor
    _on_plan(session, actor.account_id, "custom", with_card=False)
    billing_settings(session, actor.account_id).invoice_priced = True
    session.commit()
    row = products.sign_up(session, actor, "vault", "plus", now=NOW)
    assert row.invoice_public_id


def test_only_who_may_change_the_plan_signs_up(session, owner):
    actor = owner.actor
    admin = actor_for(make_user(session, session.get(Account, actor.account_id), "adam@example.com", "admin"), "admin")
    member = actor_for(make_user(session, session.get(Account, actor.account_id), "mo@example.com", "member"), "member")
    session.commit()
    assert products.sign_up(session, admin, "alerts", "free", now=NOW).product_code == "alerts"
    with pytest.raises(PermissionDenied):
        products.catalogue(session, member)
    with pytest.raises(PermissionDenied):
        products.sign_up(session, member, "vault", "starter", now=NOW)


def test_an_invitation_names_the_products_the_user_may_use(session, owner):
    actor = owner.actor
    _on_plan(session, actor.account_id, "pro")
    products.sign_up(session, actor, "analytics", "free", now=NOW)
    products.sign_up(session, actor, "alerts", "free", now=NOW)
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
