"""The operator's side: staff made by `create-operator`, their sign-in kept apart from customers',
and what they do to accounts (credits granted once per request key, plan, overage line,
suspension), each recorded with its reason in the account's own audit log."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from app.db import transaction
from app.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from app.migrations import upgrade_to_head
from app.models import AuditEvent, LedgerEntry
from app.services import audit, auth, ledger
from app.services.operator import accounts, keys, staff
from app.services.overview import overview
from tests.factories import PASSWORD, grant, make_account, make_user, owner_and_account, signed_in_token
from tests.integration.test_cli import PRODUCTION, _cli

OPERATOR_PASSWORD = "an-operator-passphrase"


def make_operator(session: Session, email: str = "ops@ledgerdesk.example") -> staff.Operator:
    user, link = staff.create_operator(session, email, full_name="Olga Ops", base_url="http://console")
    staff.accept_invitation(session, link.split("token=", 1)[1], OPERATOR_PASSWORD)
    session.commit()
    return staff.operator_for_token(session, operator_token(session, email))


def operator_token(session: Session, email: str, password: str = OPERATOR_PASSWORD) -> str:
    outcome = staff.sign_in(session, email, password)
    assert outcome.error == "", outcome.error
    token = staff.start_session(session, outcome.handoff_code, binding=outcome.binding)
    assert token
    return token


def operator_log(session: Session, account_id: int) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.account_id == account_id, col(AuditEvent.action).startswith("operator."))
            .order_by(col(AuditEvent.id))
        )
    )


def test_create_operator_prints_an_invitation_whose_operator_then_signs_in(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledgerdesk.db'}"
    upgrade_to_head(url)
    env = {**PRODUCTION, "DATABASE_URL": url}
    result = _cli(tmp_path, "create-operator", "Ops@Ledgerdesk.example", **env)
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip().rsplit(" ", 1)[1]
    assert link.startswith("https://billing.example.com/operator/accept-invite?token=")
    again = _cli(tmp_path, "create-operator", "ops@ledgerdesk.example", **env)
    assert (again.returncode, again.stderr) == (2, "Error: An operator with this email already exists.\n")
    from app.db import make_engine

    engine = make_engine(url)
    with Session(engine) as session:
        staff.accept_invitation(session, link.split("token=", 1)[1], OPERATOR_PASSWORD, full_name="Olga Ops")
        session.commit()
        operator = staff.operator_for_token(session, operator_token(session, "ops@ledgerdesk.example"))
        assert (operator.email, operator.name) == ("ops@ledgerdesk.example", "Olga Ops")
        with pytest.raises(ValidationFailed, match="already been used|invalid"):
            staff.accept_invitation(session, link.split("token=", 1)[1], "another-passphrase-x")
    engine.dispose()


def test_operator_and_customer_sessions_never_stand_in_for_each_other(session):
    make_operator(session)
    owner_and_account(session)
    customer = signed_in_token(session, "owner@example.com")
    operator = operator_token(session, "ops@ledgerdesk.example")
    session.commit()

    with pytest.raises(NotAuthenticated):
        staff.operator_for_token(session, customer)
    assert auth.actor_for_session_token(session, operator) is None
    # A customer's password does not sign in an operator, nor the other way round.
    assert staff.sign_in(session, "owner@example.com", PASSWORD).error == auth.WRONG_CREDENTIALS
    assert auth.sign_in(session, "ops@ledgerdesk.example", OPERATOR_PASSWORD).error == auth.WRONG_CREDENTIALS
    staff.sign_out(session, operator)
    with pytest.raises(NotAuthenticated):
        staff.operator_for_token(session, operator)


def test_a_grant_is_one_adjustment_per_request_key_recorded_with_the_operator_and_reason(session):
    operator = make_operator(session)
    _, account = owner_and_account(session)
    by = staff.author_of(operator)

    for _ in range(2):
        accounts.grant_credits(
            session, by, account.public_id, amount_cents=1_000, reason="Goodwill for the outage", request_key="r1"
        )
    session.commit()
    with pytest.raises(Conflict):
        accounts.grant_credits(session, by, account.public_id, amount_cents=2_000, reason="Again", request_key="r1")
    session.rollback()

    entries = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account.id)).all()
    assert [(e.source, e.amount_cents) for e in entries] == [("adjustment", 1_000)]
    assert overview(session, account.id).remaining_credits == 1_000 == ledger.ledger_sum(session, account.id)
    [event] = operator_log(session, account.id)
    assert (event.actor_name, event.actor_email) == ("Olga Ops (operator)", "ops@ledgerdesk.example")
    assert event.summary == "Granted $10.00 of usage credits. Reason: Goodwill for the outage"
    assert audit.CATEGORIES[event.action.split(".")[0]] == "Operator actions"


def test_every_action_needs_a_reason_and_a_refused_one_changes_nothing(session):
    by = staff.author_of(make_operator(session))
    _, account = owner_and_account(session)
    calls = [
        lambda: accounts.grant_credits(session, by, account.public_id, amount_cents=500, reason=" ", request_key="k"),
        lambda: accounts.set_plan(session, by, account.public_id, plan_code="pro", custom_pricing=False, reason=""),
        lambda: accounts.set_overage_line(session, by, account.public_id, cents=100, reason=""),
        lambda: accounts.set_suspended(session, by, account.public_id, suspended=True, reason=""),
    ]
    for call in calls:
        with pytest.raises(ValidationFailed) as refused:
            call()
        assert refused.value.field == "reason"
        session.rollback()
    assert operator_log(session, account.id) == []
    assert ledger.balance_of(session, account.id) == 0


def test_taking_credits_back_stops_at_the_overage_line(session):
    by = staff.author_of(make_operator(session))
    _, account = owner_and_account(session)
    grant(session, account.id, 300)
    accounts.grant_credits(session, by, account.public_id, amount_cents=-200, reason="Duplicate", request_key="a")
    session.commit()
    with pytest.raises(ledger.InsufficientCredits):
        accounts.grant_credits(session, by, account.public_id, amount_cents=-200, reason="Too far", request_key="b")
    session.rollback()
    assert ledger.balance_of(session, account.id) == 100


def test_plan_overage_line_and_suspension_change_the_account_and_say_why(session):
    by = staff.author_of(make_operator(session))
    _, account = owner_and_account(session)

    accounts.set_plan(session, by, account.public_id, plan_code="business", custom_pricing=True, reason="Signed deal")
    accounts.set_overage_line(session, by, account.public_id, cents=123_400, reason="Agreed line")
    accounts.set_suspended(session, by, account.public_id, suspended=True, reason="Fraud check")
    accounts.set_suspended(session, by, account.public_id, suspended=True, reason="Twice")
    session.commit()

    detail = accounts.account_detail(session, account.public_id)
    assert (detail.plan, detail.custom_pricing, detail.status, detail.suspended) == (
        "Business",
        True,
        "suspended",
        True,
    )
    assert ("Overage Protection", "$1,234.00") in detail.figures
    assert [e.summary for e in operator_log(session, account.id)] == [
        "Changed the plan from Basic to Business, custom pricing (invoiced). Reason: Signed deal",
        "Set the overage protection line to $1,234.00. Reason: Agreed line",
        "Suspended the account. Reason: Fraud check",
    ]
    accounts.set_suspended(session, by, account.public_id, suspended=False, reason="Cleared")
    assert not accounts.account_detail(session, account.public_id).suspended


def test_the_list_finds_accounts_by_name_email_id_or_domain_and_filters_them(session):
    by = staff.author_of(make_operator(session))
    acme = make_account(session, "Acme Inc")
    acme.domain = "acme.example"
    globex = make_account(session, "Globex")
    make_user(session, globex, "hank@globex.example")
    session.commit()
    accounts.set_suspended(session, by, globex.public_id, suspended=True, reason="Test")
    accounts.grant_credits(session, by, acme.public_id, amount_cents=500, reason="Test", request_key="g")

    def names(**filters) -> list[str]:
        return [row.name for row in accounts.list_accounts(session, **filters).rows]

    assert names() == ["Globex", "Acme Inc"]
    assert names(search="ACME.example") == ["Acme Inc"]
    assert names(search="hank@") == ["Globex"]
    assert names(search=globex.public_id) == ["Globex"]
    assert names(suspended=True) == ["Globex"]
    assert names(plan="pro") == []
    assert names(below_zero=True) == []
    row = accounts.list_accounts(session, search="acme").rows[0]
    assert (row.plan, row.status, row.balance, row.used_today, row.last_api_call) == (
        "Basic",
        "active",
        "$5.00",
        "$0.00",
        "Never",
    )
    first = accounts.list_accounts(session, limit=1)
    assert [r.name for r in first.rows] == ["Globex"] and first.next_before_id is not None
    second = accounts.list_accounts(session, limit=1, before_id=first.next_before_id)
    assert [r.name for r in second.rows] == ["Acme Inc"] and second.next_before_id is None


def test_an_operator_opens_an_account_whose_owner_accepts_and_signs_in(session):
    by = staff.author_of(make_operator(session))
    opened = accounts.open_account(
        session, by, name="Initech", owner_email="Peter@Initech.example", plan_code="pro", base_url="http://c"
    )
    session.commit()
    auth.accept_invitation(session, opened.invitation_link.split("token=", 1)[1], "a-chosen-passphrase")
    session.commit()
    actor = auth.actor_for_session_token(
        session, signed_in_token(session, "peter@initech.example", "a-chosen-passphrase")
    )
    assert actor is not None and actor.role_key == "owner" and actor.account_id == opened.account.id
    assert accounts.account_detail(session, opened.account.public_id).plan == "Pro"


def test_resend_invitation_reaches_only_the_accounts_own_invitees(session):
    by = staff.author_of(make_operator(session))
    acme, other = make_account(session, "Acme"), make_account(session, "Other")
    invitee = make_user(session, acme, "new@acme.example", "member", password=None, status="invited")
    session.commit()
    link = accounts.resend_invitation(
        session, by, acme.public_id, user_public_id=invitee.public_id, reason="Lost it", base_url="http://c"
    )
    assert "accept-invite?token=" in link
    with pytest.raises(NotFound):
        accounts.resend_invitation(
            session, by, other.public_id, user_public_id=invitee.public_id, reason="x", base_url="http://c"
        )


def test_operator_keys_are_shown_once_stored_hashed_and_refused_once_deleted(session):
    operator = make_operator(session)
    row, full_key = keys.create_key(session, operator, "CRM")
    session.commit()
    assert full_key.startswith("ldop_") and full_key not in row.secret_hash
    assert keys.authenticate(session, full_key).name == "Operator API key “CRM”"
    owner, _ = owner_and_account(session)
    from app.services import api_keys

    _, customer_key = api_keys.create_key(session, owner, "Prod")
    for wrong in (customer_key, "", full_key + "x"):
        with pytest.raises(keys.InvalidOperatorKey):
            keys.authenticate(session, wrong)
    keys.delete_key(session, operator, row.public_id)
    with pytest.raises(keys.InvalidOperatorKey):
        keys.authenticate(session, full_key)


def test_a_suspended_accounts_console_reads_but_changes_nothing(session, engine, monkeypatch):
    from types import SimpleNamespace

    from app.db import transaction
    from app.services import api_keys
    from app.services.permissions import Permission
    from app.state import session as console

    monkeypatch.setattr(console, "transaction", lambda: transaction(engine))
    by = staff.author_of(make_operator(session))
    _, account = owner_and_account(session)
    tab = SimpleNamespace(
        router=SimpleNamespace(
            headers=SimpleNamespace(cookie=f"ld_session={signed_in_token(session, 'owner@example.com')}")
        )
    )
    accounts.set_suspended(session, by, account.public_id, suspended=True, reason="Unpaid")
    session.commit()

    with console.acting(tab, Permission.API_KEYS_MANAGE) as (actor, work):
        assert api_keys.key_rows(work, actor) == []
    with pytest.raises(ledger.AccountSuspended), console.acting(tab, Permission.API_KEYS_MANAGE) as (actor, work):
        api_keys.create_key(work, actor, "Sneaky")
    assert api_keys.list_keys(session, actor) == []

    accounts.set_suspended(session, by, account.public_id, suspended=False, reason="Paid")
    session.commit()
    with console.acting(tab, Permission.API_KEYS_MANAGE) as (actor, work):
        api_keys.create_key(work, actor, "Now allowed")
    assert [k.name for k in api_keys.list_keys(session, actor)] == ["Now allowed"]


def test_an_operator_refunds_a_top_up_through_stripe_and_its_credits_are_taken_back(session, localstripe):
    from app.models import Payment
    from app.services import topups
    from tests.stripe_fixtures import save_card, stripe_intent

    by = staff.author_of(make_operator(session))
    actor, account = owner_and_account(session)
    card = save_card(session, account, "pm_card_visa")
    topup = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r-1")
    session.commit()
    payment = session.exec(select(Payment).where(Payment.stripe_payment_intent_id == topup.payment_intent_id)).one()

    accounts.refund_topup(
        session,
        by,
        account.public_id,
        payment_public_id=payment.public_id,
        amount_cents=1_000,
        reason="Asked for a refund",
        request_key="refund-1",
    )
    session.commit()

    assert ledger.balance_of(session, account.id) == 1_500 == ledger.ledger_sum(session, account.id)
    assert session.get(Payment, (payment.account_id, payment.id)).status == "partially_refunded"
    charge = stripe_intent(topup.payment_intent_id)["latest_charge"]
    from app.payments import gateway

    assert gateway.client().v1.charges.retrieve(gateway.id_of(charge)).to_dict()["amount_refunded"] == 1_000
    assert [e.summary for e in operator_log(session, account.id)][-1] == (
        f"Refunded $10.00 of the top-up {payment.public_id} through Stripe. Reason: Asked for a refund"
    )
    with pytest.raises(ValidationFailed):
        accounts.refund_topup(
            session,
            by,
            account.public_id,
            payment_public_id=payment.public_id,
            amount_cents=1_600,
            reason="Too much",
            request_key="refund-2",
        )


def _tab(cookie: str):
    """A browser tab as the console's states see it: the cookies of its websocket handshake."""
    from types import SimpleNamespace

    return SimpleNamespace(router=SimpleNamespace(headers=SimpleNamespace(cookie=cookie)))


def _viewing(session: Session, operator: staff.Operator, public_id: str) -> str:
    """Start "View as" as the back office does and trade its code as the browser does: the token."""
    outcome = accounts.view_as(session, operator, public_id, reason="Support ticket 12")
    session.commit()
    started = staff.start_viewing(session, outcome.handoff_code, binding=outcome.binding)
    session.commit()
    assert started is not None
    return started[0]


def test_view_as_opens_the_customers_own_console_read_only_audited_and_never_a_customers_session(
    session, engine, monkeypatch
):
    from app.errors import changes_refused
    from app.payments import gateway
    from app.services import api_keys, billing_overview, profile, team
    from app.services.console import console_header
    from app.services.permissions import Permission
    from app.state import session as console

    monkeypatch.setattr(console, "transaction", lambda: transaction(engine))
    operator = make_operator(session)
    op_token = operator_token(session, "ops@ledgerdesk.example")
    owner, account = owner_and_account(session)
    grant(session, account.id, 4_200)
    customer = signed_in_token(session, "owner@example.com")
    session.commit()

    # The code is bound to the operator's browser and works once.
    outcome = accounts.view_as(session, operator, account.public_id, reason="Support ticket 12")
    session.commit()
    assert staff.start_viewing(session, outcome.handoff_code, binding="another-browser") is None
    token, viewed = staff.start_viewing(session, outcome.handoff_code, binding=outcome.binding)
    session.commit()
    assert viewed == account.id
    assert staff.start_viewing(session, outcome.handoff_code, binding=outcome.binding) is None
    # A view is neither an operator's sign-in nor a customer's session, nor a sign-in a view.
    with pytest.raises(NotAuthenticated):
        staff.operator_for_token(session, token)
    assert auth.actor_for_session_token(session, token) is None
    assert staff.viewer_for_token(session, op_token) is None
    assert staff.viewer_for_token(session, customer) is None
    expected = billing_overview.overview_view(session, owner)
    session.commit()

    # The customer's pages read as the customer sees them (the Owner's pages: Team too) ...
    viewer_tab = _tab(f"ld_operator={op_token}; ld_view_as={token}")
    with console.acting(viewer_tab, Permission.BILLING_VIEW) as (actor, work):
        assert (actor.viewing, actor.account_id, actor.user_id) == (True, account.id, 0)
        assert billing_overview.overview_view(work, actor) == expected
        assert "owner@example.com" in {row.email for row in team.team_view(work, actor).rows}
        # The shell: the account's header, no person's picture or other accounts.
        header = console_header(work, actor)
        assert (header.account_name, header.picture_url) == (account.name, "")
        assert auth.memberships(work, actor) == []
        # Your Profile is a person's: the viewer is told why there is none, not "No such user".
        with pytest.raises(NotFound, match="operator viewing an account has none here"):
            profile.profile_view(work, actor)
    # ... and nothing changes: not in the database, not at Stripe, not through the user menu.
    with pytest.raises(staff.ViewingReadOnly), console.acting(viewer_tab, Permission.API_KEYS_MANAGE) as (a, w):
        api_keys.create_key(w, a, "Sneaky")
    with pytest.raises(staff.ViewingReadOnly), console.acting(viewer_tab, Permission.BILLING_MANAGE):
        gateway.create_setup_intent("cus_anyone")
    assert changes_refused.get() is None
    viewer = console.current_actor(viewer_tab)
    with pytest.raises(NotFound):
        auth.switch_membership(session, viewer, "usr_x")
    assert auth.join_as(session, viewer, "any").error
    assert api_keys.list_keys(session, owner) == []
    session.commit()
    # The customer's own tab is the customer's, and may change things.
    with console.acting(_tab(f"ld_session={customer}"), Permission.API_KEYS_MANAGE) as (actor, work):
        assert not actor.viewing and actor.user_id == owner.user_id
        api_keys.create_key(work, actor, "Mine")

    # Exit ends the view; start and end are in the account's audit log with the operator's name.
    assert accounts.stop_viewing(session, token) == account.public_id
    session.commit()
    assert staff.viewer_for_token(session, token) is None
    assert accounts.stop_viewing(session, token) is None
    log = operator_log(session, account.id)
    assert [(e.summary, e.actor_name) for e in log] == [
        (
            "Started viewing the console as the customer sees it (read-only). Reason: Support ticket 12",
            "Olga Ops (operator)",
        ),
        ("Stopped viewing the console as the customer sees it.", "Olga Ops (operator)"),
    ]
    # The operator's sign-out ends their views; a reason is required.
    second = _viewing(session, operator, account.public_id)
    staff.sign_out(session, op_token)
    session.commit()
    assert staff.viewer_for_token(session, second) is None
    with pytest.raises(ValidationFailed):
        accounts.view_as(session, operator, account.public_id, reason="")


def test_the_demo_operator_and_its_key_keep_production_from_starting_until_retired(session):
    from app.config import DEFAULT_DEMO_OPERATOR_API_KEY, DEFAULT_DEMO_PASSWORD
    from app.seed import demo_leftovers, retire_demo, seed_demo

    seed_demo(session)
    session.commit()
    assert staff.sign_in(session, "operator@example.com", DEFAULT_DEMO_PASSWORD).handoff_code
    assert keys.authenticate(session, DEFAULT_DEMO_OPERATOR_API_KEY).name == "Operator API key “Demo operator key”"
    done = retire_demo(session)
    session.commit()

    assert "blocked the operator operator@example.com (it had the demo password)" in done
    assert any(line.startswith("deleted the demo operator API key ldop_demo_") for line in done)
    assert demo_leftovers(session) == ""
    assert staff.sign_in(session, "operator@example.com", DEFAULT_DEMO_PASSWORD).handoff_code == ""
    with pytest.raises(keys.InvalidOperatorKey):
        keys.authenticate(session, DEFAULT_DEMO_OPERATOR_API_KEY)
