"""Tenant isolation: the owner of one account, who may do everything in their own account, cannot
read or change another account's objects by id. Every service function that takes an object id
is called with the other account's id: it is not found (or, where the id is a choice on a form,
refused as an invalid choice), nothing changes anywhere, and Stripe is never called. Lists show
only the caller's own objects, and an API key or session only ever reaches its own account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.api import create_api, files
from app.api import invoices as invoices_api
from app.api import metering as metering_api
from app.errors import DomainError, NotFound, ValidationFailed
from app.models import Account, ApiKey, LedgerEntry, Role, User
from app.services import (
    api_keys,
    audit,
    auth,
    balance_history,
    company,
    info,
    invoices,
    metering,
    payment_methods,
    roles,
    spend,
    tax,
    team,
    topups,
    usage,
    webhooks,
)
from app.services.permissions import Actor
from tests.factories import Populated, StripeReached, make_populated_account, signed_in_actor, signed_in_token
from tests.integration.test_permission_matrix import MATRIX, actor_taking_functions, db_snapshot


@dataclass
class Tenants:
    session: Session
    actor: Actor  # the owner of A
    a: Populated
    b: Populated


@pytest.fixture
def tenants(session) -> Tenants:
    a = make_populated_account(session, "alpha")
    b = make_populated_account(session, "bravo")
    actor = signed_in_actor(session, a.owner_email)
    session.commit()
    return Tenants(session, actor, a, b)


URL = "http://localhost"


def _owner_id(t: Tenants, x: Populated) -> str:
    return t.session.exec(select(User.public_id).where(User.email == x.owner_email)).one()


# (function, the id parameter) -> (call with the ids of account x, the error when x is the other
# account). The error is ValidationFailed where the id is a choice offered by a form (a role, a
# card to pay with or to make the default).
Call = Callable[[Tenants, Populated], Any]
CASES: dict[tuple[str, str], tuple[Call, type[Exception]]] = {
    ("api_keys.delete_key", "public_id"): (lambda t, x: api_keys.delete_key(t.session, t.actor, x.api_key), NotFound),
    ("api_keys.set_daily_budget", "public_id"): (
        lambda t, x: api_keys.set_daily_budget(t.session, t.actor, x.api_key, "5"),
        NotFound,
    ),
    # Only the actor's own person's memberships: A's owner is no user of B.
    ("auth.switch_membership", "user_public_id"): (
        lambda t, x: auth.switch_membership(t.session, t.actor, _owner_id(t, x)),
        NotFound,
    ),
    ("invoices.finish_invoice_payment", "payment_intent_id"): (
        lambda t, x: invoices.finish_invoice_payment(t.session, t.actor, x.invoice_payment_intent),
        NotFound,
    ),
    ("invoices.owned", "invoice_id"): (lambda t, x: invoices.owned(t.session, t.actor, x.invoice), NotFound),
    ("invoices.pay_invoice", "invoice_id"): (
        lambda t, x: invoices.pay_invoice(
            t.session, t.actor, invoice_id=x.invoice, payment_method_id=t.a.default_card, request_key="r1"
        ),
        NotFound,
    ),
    ("invoices.pay_invoice", "payment_method_id"): (
        lambda t, x: invoices.pay_invoice(
            t.session, t.actor, invoice_id=t.a.invoice, payment_method_id=x.default_card, request_key="r1"
        ),
        ValidationFailed,
    ),
    ("invoices.pdf_for", "invoice_id"): (lambda t, x: invoices.pdf_for(t.session, t.actor, x.invoice), NotFound),
    ("invoices.pay_from_balance", "invoice_id"): (
        lambda t, x: invoices.pay_from_balance(t.session, t.actor, invoice_id=x.invoice),
        NotFound,
    ),
    ("payment_methods.delete_method", "payment_method_id"): (
        lambda t, x: payment_methods.delete_method(t.session, t.actor, x.other_card),
        NotFound,
    ),
    ("payment_methods.delete_method", "new_default_id"): (
        lambda t, x: payment_methods.delete_method(t.session, t.actor, t.a.default_card, x.other_card),
        ValidationFailed,
    ),
    ("payment_methods.deletion_blocker", "payment_method_id"): (
        lambda t, x: payment_methods.deletion_blocker(t.session, t.actor, x.other_card),
        NotFound,
    ),
    ("payment_methods.save_bank_account", "payment_method_id"): (
        lambda t, x: payment_methods.save_bank_account(t.session, t.actor, x.other_card),
        NotFound,
    ),
    ("payment_methods.save_card", "payment_method_id"): (
        lambda t, x: payment_methods.save_card(t.session, t.actor, x.other_card),
        NotFound,
    ),
    ("payment_methods.set_default", "payment_method_id"): (
        lambda t, x: payment_methods.set_default(t.session, t.actor, x.other_card),
        NotFound,
    ),
    ("roles.delete_role", "role_id"): (lambda t, x: roles.delete_role(t.session, t.actor, x.role_id), NotFound),
    ("roles.deletion_blocker", "role_id"): (
        lambda t, x: roles.deletion_blocker(t.session, t.actor, x.role_id),
        NotFound,
    ),
    ("roles.get_role", "role_id"): (lambda t, x: roles.get_role(t.session, t.actor, x.role_id), NotFound),
    ("roles.role_row", "role_id"): (lambda t, x: roles.role_row(t.session, t.actor, x.role_id), NotFound),
    ("roles.update_role", "role_id"): (
        lambda t, x: roles.update_role(t.session, t.actor, x.role_id, name="Taken over", permissions=[]),
        NotFound,
    ),
    ("tax.remove_registration", "registration_id"): (
        lambda t, x: tax.remove_registration(t.session, t.actor, x.tax_registration),
        NotFound,
    ),
    ("team.block", "user_public_id"): (lambda t, x: team.block(t.session, t.actor, x.member), NotFound),
    ("team.change_role", "user_public_id"): (
        lambda t, x: team.change_role(t.session, t.actor, x.member, t.a.role_id),
        NotFound,
    ),
    ("team.change_role", "role_id"): (
        lambda t, x: team.change_role(t.session, t.actor, t.a.member, x.role_id),
        ValidationFailed,
    ),
    ("team.invite", "role_id"): (
        lambda t, x: team.invite(
            t.session, t.actor, email="newcomer@example.com", full_name="Newcomer", role_id=x.role_id, base_url=URL
        ),
        ValidationFailed,
    ),
    ("team.remove", "user_public_id"): (lambda t, x: team.remove(t.session, t.actor, x.member), NotFound),
    ("team.resend_invitation", "user_public_id"): (
        lambda t, x: team.resend_invitation(t.session, t.actor, x.invitee, base_url=URL),
        NotFound,
    ),
    ("team.revoke_invitation", "user_public_id"): (
        lambda t, x: team.revoke_invitation(t.session, t.actor, x.invitee),
        NotFound,
    ),
    ("team.unblock", "user_public_id"): (lambda t, x: team.unblock(t.session, t.actor, x.blocked), NotFound),
    ("topups.finish_card_topup", "payment_intent_id"): (
        lambda t, x: topups.finish_card_topup(t.session, t.actor, x.payment_intent),
        NotFound,
    ),
    ("topups.start_card_topup", "payment_method_id"): (
        lambda t, x: topups.start_card_topup(
            t.session, t.actor, amount_text="25.00", payment_method_id=x.default_card, request_key="r1"
        ),
        ValidationFailed,
    ),
}
# Id parameters that filter rather than refuse: tested on their own below.
# Ids that only narrow what the caller sees of their own account (a filter, a page cursor).
FILTERS = {
    ("info.user_names", "user_ids"),
    ("audit.events", "before_id"),
    ("balance_history.history_page", "after_id"),
    ("balance_history.previous_after", "after_id"),
    ("balance_history.count_newer", "seen_id"),
}


def _id_parameters() -> set[tuple[str, str]]:
    """(function, parameter) for every actor-taking service function's parameter that is an id."""
    return {
        (function, name)
        for function, signature in actor_taking_functions().items()
        if function in MATRIX
        for name in list(signature.parameters)[2:]
        if name == "public_id" or name.endswith(("_id", "_ids"))
    }


def test_every_id_a_service_takes_is_tried_with_another_accounts_id():
    found = _id_parameters()
    missing = sorted(found - set(CASES) - FILTERS)
    assert not missing, f"Add a tenant isolation case for these (function, id parameter): {missing}"
    gone = sorted((set(CASES) | FILTERS) - found)
    assert not gone, f"Cases for parameters that no longer exist: {gone}"


@pytest.mark.parametrize("case", sorted(CASES), ids=lambda case: f"{case[0]}-{case[1]}")
def test_another_accounts_id_is_not_found_and_changes_nothing(tenants, gateway_calls, case):
    call, error = CASES[case]
    before = db_snapshot(tenants.session)
    with pytest.raises(error) as refused:
        call(tenants, tenants.b)
    changed = [table for table, rows in db_snapshot(tenants.session).items() if rows != before[table]]
    assert not changed, f"{case} was refused ({refused.value.message}) but changed {changed}"
    assert not gateway_calls, f"{case} asked Stripe to act on another account's object"


def test_the_same_calls_with_the_accounts_own_ids_go_through(tenants, gateway_calls):
    """The refusals above are about whose the ids are: with A's own ids each call is carried out
    or gets as far as Stripe."""
    for case, (call, _) in sorted(CASES.items()):
        try:
            call(tenants, tenants.a)
        except StripeReached:
            pass
        except DomainError as exc:
            pytest.fail(f"{case} with A's own ids: {type(exc).__name__}: {exc.message}")
        tenants.session.rollback()


def test_user_names_leave_out_other_accounts_users(tenants):
    session = tenants.session
    b_member = session.exec(select(User).where(User.public_id == tenants.b.member)).one()
    names = info.user_names(session, tenants.actor, {tenants.a.member_user_id, b_member.id})
    assert set(names) == {tenants.a.member_user_id}


def test_an_audit_cursor_from_another_account_still_shows_only_ones_own_entries(tenants):
    session = tenants.session
    b_owner = signed_in_actor(session, tenants.b.owner_email)
    audit.record(session, tenants.actor, "team.invite", "A's entry")
    audit.record(session, b_owner, "team.invite", "B's entry")
    session.commit()
    b_newest = audit.events(session, b_owner).rows[0].id
    page = audit.events(session, tenants.actor, before_id=b_newest + 1)
    assert "B's entry" not in [row.summary for row in page.rows]
    assert "A's entry" in [row.summary for row in page.rows]


def test_a_balance_history_cursor_from_another_account_still_shows_only_ones_own_entries(tenants):
    session = tenants.session
    mine = set(session.exec(select(LedgerEntry.public_id).where(LedgerEntry.account_id == tenants.a.account_id)))
    b_newest = session.exec(
        select(LedgerEntry.public_id)
        .where(LedgerEntry.account_id == tenants.b.account_id)
        .order_by(col(LedgerEntry.id).desc())
    ).first()
    page = balance_history.history_page(session, tenants.actor, after_id=b_newest)
    assert mine and {row.id for row in page.rows} == mine
    assert balance_history.previous_after(session, tenants.actor, after_id=b_newest) == ""


def test_new_entries_are_counted_among_ones_own_only(tenants):
    """Balance History's "N new entries": another account's entries are never counted, whatever
    the id it was last seen at."""
    session = tenants.session
    mine = session.exec(select(LedgerEntry.id).where(LedgerEntry.account_id == tenants.a.account_id)).all()
    theirs = session.exec(select(LedgerEntry.id).where(LedgerEntry.account_id == tenants.b.account_id)).all()
    assert mine and theirs
    assert balance_history.count_newer(session, tenants.actor, 0) == len(mine)
    newer_of_mine = [entry_id for entry_id in mine if entry_id > min(theirs)]
    assert balance_history.count_newer(session, tenants.actor, min(theirs)) == len(newer_of_mine)


def test_lists_show_only_the_callers_own_objects(tenants):
    session, actor = tenants.session, tenants.actor
    b_users = set(session.exec(select(User.public_id).where(User.account_id == tenants.b.account_id)))
    members = {m.user.public_id for m in team.list_members(session, actor).rows}
    assert members and not members & b_users
    assert {k.public_id for k in api_keys.list_keys(session, actor)} == {tenants.a.api_key}
    role_ids = {r.role.id for r in roles.list_roles(session, actor).rows}
    assert tenants.a.role_id in role_ids and tenants.b.role_id not in role_ids
    assert tenants.b.role_id not in {r.id for r in team.assignable_roles(session, actor)}
    cards = {m.stripe_payment_method_id for m in payment_methods.saved_methods(session, actor)}
    assert cards == {tenants.a.default_card, tenants.a.other_card}
    deliveries = webhooks.recent_deliveries(session, actor)
    assert deliveries and {d.account_id for d in deliveries} == {tenants.a.account_id}
    path, _ = company.logo_file(session, actor)
    assert path.name == tenants.a.logo.split("/")[-1]
    assert company.company_details(session, actor).name == session.get(Account, tenants.a.account_id).name
    assert info.account_info(session, actor).api_keys == 1 and info.account_info(session, actor).custom_roles == 1
    assert spend.webhook_secret(session, actor) != spend.webhook_secret(
        session, signed_in_actor(session, tenants.b.owner_email)
    )


def test_changes_by_one_owner_stay_in_their_account(tenants):
    """The same names and keys in two accounts do not collide, and one account's changes leave
    the other's objects as they were."""
    session, actor = tenants.session, tenants.actor
    before = session.exec(select(Role.name).where(Role.account_id == tenants.b.account_id)).all()
    roles.create_role(session, actor, name="Billing", permissions=[])
    roles.update_role(session, actor, tenants.a.role_id, name="Readers", permissions=[])
    api_keys.create_key(session, actor, "Production")
    session.commit()
    assert session.exec(select(Role.name).where(Role.account_id == tenants.b.account_id)).all() == before
    b_actor = signed_in_actor(session, tenants.b.owner_email)
    roles.create_role(session, b_actor, name="Billing", permissions=[])
    session.commit()
    b_keys = session.exec(select(ApiKey).where(ApiKey.account_id == tenants.b.account_id)).all()
    assert [k.public_id for k in b_keys] == [tenants.b.api_key]


# --- Over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def client(engine):
    api = create_api()
    api.dependency_overrides[metering_api.metering_engine] = lambda: engine
    api.dependency_overrides[files.files_engine] = lambda: engine
    api.dependency_overrides[invoices_api.invoices_engine] = lambda: engine
    with TestClient(api) as client:
        yield client


def test_an_api_key_reads_and_debits_only_its_own_account(tenants, client):
    session = tenants.session
    ledger_b = session.exec(select(LedgerEntry.id).where(LedgerEntry.account_id == tenants.b.account_id)).all()
    session.commit()  # no transaction of ours in the API's way
    response = client.post(
        "/api/v1/usage", json={"amount_cents": 250}, headers={"Authorization": f"Bearer {tenants.a.full_key}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["balance_cents"] == 10_000 - 250
    balance_b = client.get("/api/v1/balance", headers={"Authorization": f"Bearer {tenants.b.full_key}"})
    assert balance_b.json()["remaining_credits_cents"] == 10_000
    assert session.exec(select(LedgerEntry.id).where(LedgerEntry.account_id == tenants.b.account_id)).all() == ledger_b


def test_a_session_reaches_only_its_own_accounts_logo(tenants, client):
    session = tenants.session
    company.remove_logo(session, tenants.actor)
    cookies = {p.owner_email: signed_in_token(session, p.owner_email) for p in (tenants.a, tenants.b)}
    session.commit()
    client.cookies.set(auth.SESSION_COOKIE, cookies[tenants.a.owner_email])
    assert client.get("/api/account/logo").status_code == 404
    client.cookies.set(auth.SESSION_COOKIE, cookies[tenants.b.owner_email])
    assert client.get("/api/account/logo").status_code == 200


def test_an_invoice_pdf_is_served_only_to_its_own_account(tenants, client):
    session = tenants.session
    client.cookies.set(auth.SESSION_COOKIE, signed_in_token(session, tenants.a.owner_email))
    session.commit()
    own = client.get(f"/api/invoices/{tenants.a.invoice}/pdf")
    assert own.status_code == 200 and own.content.startswith(b"%PDF")
    other = client.get(f"/api/invoices/{tenants.b.invoice}/pdf")
    assert other.status_code == 404 and not other.content.startswith(b"%PDF")


def test_an_operator_viewing_one_account_reaches_nothing_of_another(tenants, gateway_calls):
    """ "View as" A: every id of B is refused as for A's own users, and nothing changes."""
    from app.db import read_only
    from app.errors import changes_refused
    from app.services.operator import accounts as operator_accounts
    from app.services.operator import staff

    setup = tenants.session
    user, link = staff.create_operator(setup, "ops@ledgerdesk.example", base_url=URL)
    staff.accept_invitation(setup, link.split("token=")[1], "an-operator-passphrase")
    outcome = staff.sign_in(setup, "ops@ledgerdesk.example", "an-operator-passphrase")
    operator = staff.operator_for_token(
        setup, staff.start_session(setup, outcome.handoff_code, binding=outcome.binding)
    )
    a_public_id = setup.get_one(Account, tenants.a.account_id).public_id
    code = operator_accounts.view_as(setup, operator, a_public_id, reason="Ticket 7")
    token, _ = staff.start_viewing(setup, code.handoff_code, binding=code.binding)
    setup.commit()
    before = db_snapshot(setup)
    setup.commit()
    for case, (call, _error) in sorted(CASES.items()):
        with Session(setup.get_bind()) as session:
            viewer = staff.viewer_for_token(session, token)
            assert viewer is not None and viewer.account_id == tenants.a.account_id
            session.commit()
            read_only(session, staff.ViewingReadOnly())
            refused = changes_refused.set(staff.ViewingReadOnly())
            try:
                with pytest.raises(DomainError):
                    call(Tenants(session, viewer, tenants.a, tenants.b), tenants.b)
            finally:
                changes_refused.reset(refused)
                session.rollback()
        assert not gateway_calls, f"{case} asked Stripe to act on another account's object"
    changed = [table for table, rows in db_snapshot(setup).items() if rows != before[table]]
    assert not changed, f"viewing A changed {changed}"


def test_usage_shows_only_ones_own_accounts_usage(tenants):
    """The Usage page, its CSV and the API Keys page's usage: another account's calls (rolled up
    or still in the tail, with the same description) are never counted."""
    session = tenants.session
    for populated, cents in ((tenants.a, 125), (tenants.b, 9_900)):
        answer = metering.record_usage(session, api_key=populated.full_key, amount_cents=cents, description="Report")
        assert answer.status_code == 200, answer.body
    session.commit()
    usage.roll_up(session, tenants.b.account_id)
    view = usage.usage_view(session, tenants.actor, preset="7", by="description")
    assert [(row.name, row.calls, row.amount) for row in view.rows] == [("Report", "1", "$1.25")]
    assert "99.00" not in usage.usage_csv(session, tenants.actor, preset="7")
    assert [row.used_today for row in api_keys.key_rows(session, tenants.actor)] == ["$1.25"]
