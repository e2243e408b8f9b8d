"""The Overview's getting-started list ticks itself off from the account's own data."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.errors import PermissionDenied
from app.models import AuditEvent, PaymentMethod
from app.services import api_keys, billing_overview, getting_started, ledger, team
from app.services.accounts import builtin_role
from tests.factories import grant, make_user, signed_in_actor


def _done(session, actor) -> dict[str, bool]:
    return {step.key: step.done for step in billing_overview.overview_view(session, actor).getting_started}


def test_each_step_is_ticked_by_what_the_account_did_and_the_list_goes_when_all_are(session, owner):
    actor, account = owner
    assert _done(session, actor) == {"payment_method": False, "credits": False, "api_key": False, "teammate": False}
    assert [s.href for s in billing_overview.overview_view(session, actor).getting_started] == [
        "/billing/payment-methods",
        "/billing/add-usage-credits",
        "/api-keys",
        "/team",
    ]

    api_keys.create_key(session, actor, "First")
    grant(session, account.id, 500)  # credits given are not credits bought
    assert _done(session, actor) == {"payment_method": False, "credits": False, "api_key": True, "teammate": False}

    session.add(
        PaymentMethod(
            account_id=account.id,
            stripe_payment_method_id="pm_first",
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2030,
            is_default=True,
        )
    )
    ledger.credit(
        session,
        account_id=account.id,
        amount_cents=2_000,
        source="purchase",
        description="Usage credits",
        idempotency_key="purchase:first",
    )
    team.invite(
        session,
        actor,
        email="mate@example.com",
        full_name="Mate",
        role_id=builtin_role(session, "member").id,
        base_url="http://console",
    )
    assert billing_overview.overview_view(session, actor).getting_started == []


def test_dismissing_hides_it_for_the_account_and_needs_billing_manage(session, owner):
    actor, account = owner
    make_user(session, account, "viewer@example.com", "member")
    session.commit()
    with pytest.raises(PermissionDenied):
        getting_started.dismiss(session, signed_in_actor(session, "viewer@example.com"))
    session.rollback()

    getting_started.dismiss(session, actor)
    session.commit()
    assert billing_overview.overview_view(session, actor).getting_started == []
    assert session.exec(select(AuditEvent.summary)).all() == ["Hid the getting-started list"]
