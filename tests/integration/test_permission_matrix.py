"""The permission matrix, checked on the server side:

- every service function that takes an actor, called as each built-in role, two custom roles and
  a signed-out visitor: refused (PermissionDenied, nothing written, Stripe never called) exactly
  when the role lacks the permission the table below says it needs, and carried out otherwise.
  The table must name every such function, so a new one fails here until it is added;
- every Reflex event handler of every console page checks the signed-in user's permission on
  the server (`acting(self, Permission.X)` or `current_actor(self, Permission.X)`) with its page's
  permission or a stricter one,
  unless it is listed as a pure UI handler; no state opens a transaction before that check, and
  the account a page works on is only ever the checked actor's;
- every HTTP route is listed with who may call it, refuses a caller without credentials, and a
  route that takes an id has a tenant isolation test (test_tenant_isolation.py).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import reflex as rx
from fastapi.testclient import TestClient
from sqlmodel import Session, select

import app.pages
import app.services
from app.api import auth_routes, create_api, files, operator_auth, stripe_webhook
from app.api import health as health_api
from app.api import invoices as invoices_api
from app.api import metering as metering_api
from app.api import operator as operator_api
from app.components.layout import NAV, PAGES
from app.db import transaction
from app.errors import NotAuthenticated, PermissionDenied
from app.models import Account, LedgerEntry, SQLModel, User
from app.services import (
    api_keys,
    audit,
    auth,
    balance_history,
    billing_details,
    billing_overview,
    chat,
    company,
    console,
    getting_started,
    health,
    info,
    invoices,
    payment_methods,
    products,
    profile,
    recharge,
    roles,
    spend,
    subscription,
    tax,
    team,
    topups,
    upcoming,
    usage,
    webhooks,
)
from app.services.accounts import builtin_role, create_account, create_user
from app.services.permissions import BUILTIN_ROLES, Actor
from app.services.permissions import Permission as P
from tests.factories import (
    PASSWORD,
    PNG,
    Populated,
    StripeReached,
    make_populated_account,
    signed_in_actor,
    signed_in_token,
)

# --- The roles -----------------------------------------------------------------------------

CUSTOM_ROLES: dict[str, frozenset[P]] = {
    "billing viewer": frozenset({P.INFO_VIEW, P.BILLING_VIEW}),
    "developer": frozenset({P.INFO_VIEW, P.COMPANY_VIEW, P.API_KEYS_MANAGE}),
}
ROLE_PERMISSIONS: dict[str, frozenset[P]] = {
    **{key: permissions for key, (_, permissions) in BUILTIN_ROLES.items()},
    **CUSTOM_ROLES,
}
SIGNED_OUT = "signed out"


@dataclass
class World:
    """One account (see make_populated_account) and the actor the call is made as."""

    session: Session
    actor: Actor | None
    account: Populated
    member_role_id: int


def _world(session: Session, role: str, slug: str) -> World:
    account = make_populated_account(session, slug)
    email = account.owner_email
    if role not in ("owner", SIGNED_OUT):
        email = f"actor@{slug}.test"
        if role in CUSTOM_ROLES:
            owner = signed_in_actor(session, account.owner_email)
            granted = roles.create_role(session, owner, name=role.title(), permissions=CUSTOM_ROLES[role])
        else:
            granted = builtin_role(session, role)
        create_user(
            session,
            account=session.get(Account, account.account_id),
            email=email,
            full_name=role.title(),
            role=granted,
            password=PASSWORD,
        )
    actor = None if role == SIGNED_OUT else signed_in_actor(session, email)
    session.commit()
    assert actor is None or actor.permissions == ROLE_PERMISSIONS[role]
    return World(session, actor, account, builtin_role(session, "member").id)


HOOK = "https://hooks.example.com/ledgerdesk"


def _own_user_id(world: World) -> str:
    """The actor's own membership: the one account every signed-in person can switch to."""
    user = world.session.get(User, world.actor.user_id) if world.actor else None
    return user.public_id if user is not None else ""


def _invitation_to_actor(world: World) -> str:
    """An invitation of the actor's own person into another account (none for the signed-out)."""
    if world.actor is None:
        return ""
    other = create_account(world.session, name=f"Inviting {world.actor.user_id}")
    invited = create_user(
        world.session,
        account=other,
        email=world.actor.email,
        full_name="Invited",
        role=builtin_role(world.session, "member"),
        password=None,
        status="invited",
    )
    return auth.issue_invitation(world.session, invited, base_url="http://console").split("token=")[1]


def _joined(outcome: auth.SignInOutcome) -> auth.SignInOutcome:
    assert outcome.error == "", outcome.error
    return outcome


def _picture_file(world: World):
    profile.save_picture(world.session, world.actor, PNG)
    return profile.picture_file(world.session, world.actor)


ADDRESS = company.Address(line1="1 Main St", line2="", city="Berlin", postal_code="10115", region="", country="DE")
INVOICE_ADDRESS = {
    "company_name": "Acme GmbH",
    "address1": "1 Main St",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}

# Every service function that takes an actor: the permission it needs (None: none, it only
# reads the actor's own account) and a call that succeeds, or gets as far as Stripe, for an
# actor who holds it.
Call = Callable[[World], Any]
MATRIX: dict[str, tuple[P | None, Call]] = {
    "api_keys.create_key": (P.API_KEYS_MANAGE, lambda w: api_keys.create_key(w.session, w.actor, "CI")),
    "api_keys.delete_key": (P.API_KEYS_MANAGE, lambda w: api_keys.delete_key(w.session, w.actor, w.account.api_key)),
    "api_keys.set_daily_budget": (
        P.API_KEYS_MANAGE,
        lambda w: api_keys.set_daily_budget(w.session, w.actor, w.account.api_key, "5"),
    ),
    "api_keys.key_rows": (P.API_KEYS_MANAGE, lambda w: api_keys.key_rows(w.session, w.actor)),
    "api_keys.list_keys": (P.API_KEYS_MANAGE, lambda w: api_keys.list_keys(w.session, w.actor)),
    "balance_history.history_csv": (P.BILLING_VIEW, lambda w: balance_history.history_csv(w.session, w.actor)),
    "usage.usage_view": (P.BILLING_VIEW, lambda w: usage.usage_view(w.session, w.actor)),
    "usage.usage_csv": (P.BILLING_VIEW, lambda w: usage.usage_csv(w.session, w.actor)),
    "balance_history.history_page": (P.BILLING_VIEW, lambda w: balance_history.history_page(w.session, w.actor)),
    "balance_history.previous_after": (
        P.BILLING_VIEW,
        lambda w: balance_history.previous_after(w.session, w.actor, after_id=""),
    ),
    "balance_history.newest_id": (P.BILLING_VIEW, lambda w: balance_history.newest_id(w.session, w.actor)),
    "balance_history.count_newer": (P.BILLING_VIEW, lambda w: balance_history.count_newer(w.session, w.actor, 0)),
    "billing_overview.overview_view": (P.BILLING_VIEW, lambda w: billing_overview.overview_view(w.session, w.actor)),
    "auth.memberships": (P.INFO_VIEW, lambda w: auth.memberships(w.session, w.actor)),
    "auth.switch_membership": (P.INFO_VIEW, lambda w: auth.switch_membership(w.session, w.actor, _own_user_id(w))),
    "auth.join_as": (P.INFO_VIEW, lambda w: _joined(auth.join_as(w.session, w.actor, _invitation_to_actor(w)))),
    "billing_overview.live_figures": (P.BILLING_VIEW, lambda w: billing_overview.live_figures(w.session, w.actor)),
    "audit.events": (P.AUDIT_VIEW, lambda w: audit.events(w.session, w.actor, category="team")),
    "audit.people": (P.AUDIT_VIEW, lambda w: audit.people(w.session, w.actor)),
    "billing_details.billing_email": (P.BILLING_VIEW, lambda w: billing_details.billing_email(w.session, w.actor)),
    "billing_details.invoice_address": (
        P.BILLING_VIEW,
        lambda w: billing_details.invoice_address(w.session, w.actor),
    ),
    "billing_details.save_address": (
        P.BILLING_MANAGE,
        lambda w: billing_details.save_address(w.session, w.actor, INVOICE_ADDRESS),
    ),
    "billing_details.save_billing_email": (
        P.BILLING_MANAGE,
        lambda w: billing_details.save_billing_email(w.session, w.actor, "invoices@example.com"),
    ),
    "chat.read": (P.INFO_VIEW, lambda w: chat.read(w.session, w.actor)),
    "chat.send": (P.INFO_VIEW, lambda w: chat.send(w.session, w.actor, "Hello")),
    "chat.unread": (P.INFO_VIEW, lambda w: chat.unread(w.session, w.actor)),
    "company.account_timezone": (None, lambda w: company.account_timezone(w.session, w.actor)),
    "company.company_details": (P.COMPANY_VIEW, lambda w: company.company_details(w.session, w.actor)),
    "company.logo_file": (P.INFO_VIEW, lambda w: company.logo_file(w.session, w.actor)),
    "company.remove_logo": (P.COMPANY_EDIT, lambda w: company.remove_logo(w.session, w.actor)),
    "company.rename_account": (P.ACCOUNT_RENAME, lambda w: company.rename_account(w.session, w.actor, "Renamed")),
    "company.save_logo": (P.COMPANY_EDIT, lambda w: company.save_logo(w.session, w.actor, PNG)),
    "company.update_company": (
        P.COMPANY_EDIT,
        lambda w: company.update_company(
            w.session, w.actor, domain="example.com", timezone="Europe/Berlin", language="de", address=ADDRESS
        ),
    ),
    "getting_started.dismiss": (P.BILLING_MANAGE, lambda w: getting_started.dismiss(w.session, w.actor)),
    "info.account_info": (P.INFO_VIEW, lambda w: info.account_info(w.session, w.actor)),
    "info.user_names": (None, lambda w: info.user_names(w.session, w.actor, {w.account.member_user_id})),
    "invoices.finish_invoice_payment": (
        P.BILLING_MANAGE,
        lambda w: invoices.finish_invoice_payment(w.session, w.actor, w.account.invoice_payment_intent),
    ),
    "invoices.history": (P.BILLING_VIEW, lambda w: invoices.history(w.session, w.actor)),
    "invoices.owned": (P.BILLING_VIEW, lambda w: invoices.owned(w.session, w.actor, w.account.invoice)),
    "invoices.pay_invoice": (
        P.BILLING_MANAGE,
        lambda w: invoices.pay_invoice(
            w.session, w.actor, invoice_id=w.account.invoice, payment_method_id=w.account.default_card, request_key="r1"
        ),
    ),
    "invoices.pay_from_balance": (
        P.BILLING_MANAGE,
        lambda w: invoices.pay_from_balance(w.session, w.actor, invoice_id=w.account.invoice),
    ),
    "invoices.payments_due": (P.BILLING_VIEW, lambda w: invoices.payments_due(w.session, w.actor)),
    "invoices.pdf_for": (P.BILLING_VIEW, lambda w: invoices.pdf_for(w.session, w.actor, w.account.invoice)),
    "payment_methods.delete_method": (
        P.BILLING_MANAGE,
        lambda w: payment_methods.delete_method(w.session, w.actor, w.account.other_card),
    ),
    "payment_methods.deletion_blocker": (
        P.BILLING_MANAGE,
        lambda w: payment_methods.deletion_blocker(w.session, w.actor, w.account.other_card),
    ),
    "payment_methods.save_card": (
        P.BILLING_MANAGE,
        lambda w: payment_methods.save_card(w.session, w.actor, "pm_card_visa"),
    ),
    "payment_methods.save_bank_account": (
        P.BILLING_MANAGE,
        lambda w: payment_methods.save_bank_account(w.session, w.actor, "pm_sepa_from_stripe_js"),
    ),
    "payment_methods.methods_on_file": (P.BILLING_VIEW, lambda w: payment_methods.methods_on_file(w.session, w.actor)),
    "payment_methods.saved_methods": (P.BILLING_VIEW, lambda w: payment_methods.saved_methods(w.session, w.actor)),
    "payment_methods.set_default": (
        P.BILLING_MANAGE,
        lambda w: payment_methods.set_default(w.session, w.actor, w.account.other_card),
    ),
    "payment_methods.start_bank_account_setup": (
        P.BILLING_MANAGE,
        lambda w: payment_methods.start_bank_account_setup(
            w.session,
            w.actor,
            holder_name="Erika Mustermann",
            email="erika@example.com",
            iban="DE89 3704 0044 0532 0130 00",
            mandate_accepted=True,
        ),
    ),
    "payment_methods.start_card_setup": (
        P.BILLING_MANAGE,
        lambda w: payment_methods.start_card_setup(w.session, w.actor),
    ),
    "recharge.recharge_settings": (P.BILLING_VIEW, lambda w: recharge.recharge_settings(w.session, w.actor)),
    "recharge.save_settings": (
        P.BILLING_MANAGE,
        lambda w: recharge.save_settings(w.session, w.actor, True, "20.00", "600.00"),
    ),
    "products.catalogue": (P.PLAN_MANAGE, lambda w: products.catalogue(w.session, w.actor)),
    "products.quote": (P.PLAN_MANAGE, lambda w: products.quote(w.session, w.actor, "alerts", "pro")),
    "products.change": (
        P.PLAN_MANAGE,
        lambda w: products.change(w.session, w.actor, "alerts", "free", request_key="r1"),
    ),
    "profile.active_sessions": (P.INFO_VIEW, lambda w: profile.active_sessions(w.session, w.actor, "UTC")),
    "profile.change_password": (
        P.INFO_VIEW,
        lambda w: profile.change_password(
            w.session, w.actor, current=PASSWORD, new="a-new-long-passphrase", confirm="a-new-long-passphrase"
        ),
    ),
    "profile.picture_file": (P.INFO_VIEW, lambda w: _picture_file(w)),
    "console.console_header": (P.INFO_VIEW, lambda w: console.console_header(w.session, w.actor)),
    "profile.profile": (P.INFO_VIEW, lambda w: profile.profile(w.session, w.actor)),
    "profile.profile_view": (P.INFO_VIEW, lambda w: profile.profile_view(w.session, w.actor)),
    "profile.remove_picture": (P.INFO_VIEW, lambda w: profile.remove_picture(w.session, w.actor)),
    "profile.save_picture": (P.INFO_VIEW, lambda w: profile.save_picture(w.session, w.actor, PNG)),
    "profile.sign_out_other_sessions": (P.INFO_VIEW, lambda w: profile.sign_out_other_sessions(w.session, w.actor)),
    "profile.update_name": (P.INFO_VIEW, lambda w: profile.update_name(w.session, w.actor, "New Name")),
    "roles.create_role": (
        P.ROLES_MANAGE,
        lambda w: roles.create_role(w.session, w.actor, name="Auditors", permissions=["info.view"]),
    ),
    "roles.delete_role": (P.ROLES_MANAGE, lambda w: roles.delete_role(w.session, w.actor, w.account.role_id)),
    "roles.deletion_blocker": (
        P.ROLES_MANAGE,
        lambda w: roles.deletion_blocker(w.session, w.actor, w.account.role_id),
    ),
    "roles.get_role": (P.ROLES_MANAGE, lambda w: roles.get_role(w.session, w.actor, w.account.role_id)),
    "roles.list_roles": (P.ROLES_MANAGE, lambda w: roles.list_roles(w.session, w.actor)),
    "roles.role_row": (P.ROLES_MANAGE, lambda w: roles.role_row(w.session, w.actor, w.account.role_id)),
    "roles.roles_view": (P.ROLES_MANAGE, lambda w: roles.roles_view(w.session, w.actor)),
    "roles.update_role": (
        P.ROLES_MANAGE,
        lambda w: roles.update_role(w.session, w.actor, w.account.role_id, name="Readers", permissions=[]),
    ),
    "spend.save_settings": (
        P.BILLING_MANAGE,
        lambda w: spend.save_settings(
            w.session, w.actor, enabled=True, daily_budget="100.00", notify_threshold="50.00", webhook_url=HOOK
        ),
    ),
    "spend.spend_settings": (P.BILLING_VIEW, lambda w: spend.spend_settings(w.session, w.actor)),
    "spend.spend_view": (P.BILLING_VIEW, lambda w: spend.spend_view(w.session, w.actor)),
    "spend.webhook_secret": (P.BILLING_MANAGE, lambda w: spend.webhook_secret(w.session, w.actor)),
    "subscription.change_plan": (
        P.PLAN_MANAGE,
        lambda w: subscription.change_plan(w.session, w.actor, plan_code="pro", request_key="r1"),
    ),
    "subscription.change_seats": (
        P.PLAN_MANAGE,
        lambda w: subscription.change_seats(w.session, w.actor, seats_text="12", request_key="r1"),
    ),
    "subscription.overview": (P.PLAN_MANAGE, lambda w: subscription.overview(w.session, w.actor)),
    "subscription.quote_plan": (P.PLAN_MANAGE, lambda w: subscription.quote_plan(w.session, w.actor, "pro")),
    "subscription.quote_seats": (P.PLAN_MANAGE, lambda w: subscription.quote_seats(w.session, w.actor, "12")),
    "upcoming.for_billing": (P.BILLING_VIEW, lambda w: upcoming.for_billing(w.session, w.actor)),
    "upcoming.for_plan": (P.PLAN_MANAGE, lambda w: upcoming.for_plan(w.session, w.actor)),
    "tax.add_registration": (
        P.BILLING_MANAGE,
        lambda w: tax.add_registration(w.session, w.actor, country="DE", tax_type="eu_vat", value="DE136695976"),
    ),
    "tax.registrations": (P.BILLING_VIEW, lambda w: tax.registrations(w.session, w.actor)),
    "tax.remove_registration": (
        P.BILLING_MANAGE,
        lambda w: tax.remove_registration(w.session, w.actor, w.account.tax_registration),
    ),
    "tax.tax_view": (P.BILLING_VIEW, lambda w: tax.tax_view(w.session, w.actor)),
    "team.assignable_roles": (P.TEAM_MANAGE, lambda w: team.assignable_roles(w.session, w.actor)),
    "team.block": (P.TEAM_MANAGE, lambda w: team.block(w.session, w.actor, w.account.member)),
    "team.change_role": (
        P.TEAM_MANAGE,
        lambda w: team.change_role(w.session, w.actor, w.account.member, w.account.role_id),
    ),
    "team.invite": (
        P.TEAM_MANAGE,
        lambda w: team.invite(
            w.session,
            w.actor,
            email=f"new-{w.account.account_id}@example.com",
            full_name="New Person",
            role_id=w.member_role_id,
            base_url="http://localhost",
        ),
    ),
    "team.list_members": (P.TEAM_MANAGE, lambda w: team.list_members(w.session, w.actor)),
    "team.remove": (P.TEAM_MANAGE, lambda w: team.remove(w.session, w.actor, w.account.member)),
    "team.resend_invitation": (
        P.TEAM_MANAGE,
        lambda w: team.resend_invitation(w.session, w.actor, w.account.invitee, base_url="http://localhost"),
    ),
    "team.revoke_invitation": (
        P.TEAM_MANAGE,
        lambda w: team.revoke_invitation(w.session, w.actor, w.account.invitee),
    ),
    "team.seats": (P.TEAM_MANAGE, lambda w: team.seats(w.session, w.actor)),
    "team.unblock": (P.TEAM_MANAGE, lambda w: team.unblock(w.session, w.actor, w.account.blocked)),
    "team.team_view": (P.TEAM_MANAGE, lambda w: team.team_view(w.session, w.actor)),
    "topups.finish_card_topup": (
        P.BILLING_MANAGE,
        lambda w: topups.finish_card_topup(w.session, w.actor, w.account.payment_intent),
    ),
    "topups.crypto_unavailable": (P.BILLING_VIEW, lambda w: topups.crypto_unavailable(w.session, w.actor)),
    "topups.current_balance": (P.BILLING_VIEW, lambda w: topups.current_balance(w.session, w.actor)),
    "topups.recent_payments": (P.BILLING_VIEW, lambda w: topups.recent_payments(w.session, w.actor, "UTC")),
    "topups.start_card_topup": (
        P.BILLING_MANAGE,
        lambda w: topups.start_card_topup(
            w.session, w.actor, amount_text="25.00", payment_method_id=w.account.default_card, request_key="r1"
        ),
    ),
    "topups.start_crypto_topup": (
        P.BILLING_MANAGE,
        lambda w: topups.start_crypto_topup(w.session, w.actor, amount_text="25.00", request_key="r1"),
    ),
    "webhooks.delivery_rows": (P.BILLING_VIEW, lambda w: webhooks.delivery_rows(w.session, w.actor, "UTC")),
    "webhooks.recent_deliveries": (P.BILLING_VIEW, lambda w: webhooks.recent_deliveries(w.session, w.actor)),
    "webhooks.send_test_event": (P.BILLING_MANAGE, lambda w: webhooks.send_test_event(w.session, w.actor)),
}

# Functions with an actor parameter that are not service entry points.
NOT_ENTRY_POINTS = {
    "audit.record": "writes the entry of a change its caller already checked and made (test_audit_log.py)",
    "notices.notices_for": "the banner: nothing for a role without billing.manage, never refused (test_live.py)",
    "permissions.require": "the check itself (tests/unit/test_permissions.py)",
    "roles.within": "a predicate on the actor's permissions, used by the role and team rules",
    "navigation.landing": "where a signed-in actor lands after sign-in, read from their permissions (test_auth.py)",
}


def actor_taking_functions() -> dict[str, inspect.Signature]:
    """Public functions of app.services modules with a parameter that is an actor."""
    found = {}
    # walk_packages: a service package's modules (app.services.invoices.payment, ...) are named
    # by the package, through which callers reach their functions (invoices.pay_invoice).
    for module_info in pkgutil.walk_packages(app.services.__path__, prefix="app.services."):
        module = importlib.import_module(module_info.name)
        top = module_info.name.removeprefix("app.services.").split(".")[0]
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__:
                continue
            signature = inspect.signature(function)
            if any(p.name == "actor" or "Actor" in str(p.annotation) for p in signature.parameters.values()):
                found[f"{top}.{name}"] = signature
    return found


def test_the_matrix_names_every_service_function_that_takes_an_actor():
    found = actor_taking_functions()
    missing = sorted(set(found) - set(MATRIX) - set(NOT_ENTRY_POINTS))
    assert not missing, (
        "Service functions that take an actor but are not in MATRIX (tests/integration/"
        f"test_permission_matrix.py); add each with the permission it requires and a call: {missing}"
    )
    gone = sorted((set(MATRIX) | set(NOT_ENTRY_POINTS)) - set(found))
    assert not gone, f"MATRIX names functions that no longer exist: {gone}"
    for name in MATRIX:
        assert list(found[name].parameters)[:2] == ["session", "actor"], f"{name} does not start (session, actor)"


def db_snapshot(session: Session) -> dict[str, list[str]]:
    """Every row of every table, and the uploaded files: what a refused call must leave alone."""
    session.flush()
    rows = {
        table.name: sorted(repr(tuple(row)) for row in session.execute(select(table)))
        for table in SQLModel.metadata.sorted_tables
    }
    rows["files"] = sorted(str(p) for p in company.uploads_dir().rglob("*"))
    return rows


def _outcome(world: World, call: Call, gateway_calls: list[str]) -> tuple[str, str]:
    """("refused"|"allowed"|"failed", detail); a refused call must have written nothing."""
    before = db_snapshot(world.session)
    gateway_calls.clear()
    try:
        call(world)
    except (PermissionDenied, NotAuthenticated) as exc:
        written = [table for table, rows in db_snapshot(world.session).items() if rows != before[table]]
        world.session.rollback()
        if written or gateway_calls:
            return "failed", f"refused ({exc.message}) but wrote {written} and called Stripe {gateway_calls}"
        return "refused", type(exc).__name__
    except StripeReached as exc:
        world.session.rollback()
        return "allowed", f"reached Stripe ({exc})"
    except Exception as exc:
        world.session.rollback()
        return "failed", f"{type(exc).__name__}: {exc}"
    world.session.commit()
    return "allowed", "done"


@pytest.mark.parametrize("function", sorted(MATRIX))
def test_each_role_is_refused_exactly_without_the_required_permission(session, gateway_calls, function):
    permission, call = MATRIX[function]
    wrong = []
    for number, role in enumerate([*ROLE_PERMISSIONS, SIGNED_OUT]):
        if role == SIGNED_OUT and permission is None:
            continue  # needs a signed-in caller by construction: pages pass the actor they loaded
        world = _world(session, role, f"r{number}")
        outcome, detail = _outcome(world, call, gateway_calls)
        if role == SIGNED_OUT:
            expected = "refused"
        else:
            expected = "allowed" if permission is None or permission in ROLE_PERMISSIONS[role] else "refused"
        if outcome != expected or (role == SIGNED_OUT and detail != "NotAuthenticated"):
            wrong.append(f"{role}: expected {expected}, got {outcome} ({detail})")
    assert not wrong, f"{function} needs {permission}:\n" + "\n".join(wrong)


# --- Event handlers ------------------------------------------------------------------------

PUBLIC_PAGE_MODULES = {
    "app.pages.sign_in",
    "app.pages.sign_up",
    "app.pages.account_recovery",
    "app.pages.invitation",
    "app.pages.operator.sign_in",
}
# The operator's back office: no customer permission applies; every handler loads the signed-in
# operator first (test_every_operator_handler_loads_the_signed_in_operator_first).
OPERATOR_MODULES = ("app.pages.operator", "app.state.operator")

# A handler may check a stricter permission than its page's: the one that governs changing what
# the page shows. Everyone holds info.view (custom roles always get it), so any check is at
# least as strict as that.
STRICTER: dict[P, set[P]] = {
    P.INFO_VIEW: set(P),
    P.COMPANY_VIEW: {P.COMPANY_EDIT, P.ACCOUNT_RENAME},
    P.BILLING_VIEW: {P.BILLING_MANAGE},
}

# Handlers that read and change nothing on the server: they open or close a dialog, or keep a
# form field's value, from what the page already shows. Checked below to call no service,
# database or Stripe code.
UI_ONLY = {
    "AddCreditsState": {"set_selected", "close_capture", "save_card", "open_sepa_form"},
    "ApiKeysState": {
        "open_add",
        "add_open_change",
        "created_open_change",
        "ask_delete",
        "confirm_open_change",
        "open_budget",
        "budget_open_change",
    },
    "AutoRechargeState": {"set_enabled"},
    # They only navigate: the URL's load checks the permission.
    "BalanceHistoryState": {"apply_filters", "next_page"},
    "UsageState": {"apply_filters"},
    "CompanyState": {"choose_country", "image_rejected"},
    "HeaderLogoState": {"image_rejected"},
    "InvoiceAddressState": {"choose_country"},
    "InvoicesState": {"set_selected_card", "confirm_open_change", "open_balance_pay"},
    "PaymentMethodsState": {"set_new_default", "confirm_open_change", "close_capture", "save_card", "open_sepa_form"},
    "PlansState": {"confirm_open_change"},
    "ProductsState": {"confirm_open_change"},
    "ProfileState": {"image_rejected"},
    "RolesState": {"new_role", "editor_open_change", "confirm_open_change"},
    "SpendManagementState": {"set_enabled"},
    "TaxSettingsState": {"open_form", "close_form", "choose_country", "ask_remove", "confirm_open_change"},
    "TeamState": {
        "open_invite",
        "ask_change_role",
        "dialog_open_change",
        "ask_confirm",
        "confirm_open_change",
    },
}
# The shell's state, on every console page: it needs no permission, only the caller's own session.
SHELL_STATE = "SessionState"
# The states of the shell around every console page, and what each of their handlers may do.
SHELL_STATES = (SHELL_STATE, "NoticesState")
SHELL_HANDLERS = {
    "load_console": "loads the signed-in user's own header and permissions (current_actor without a permission)",
    "sign_out": "ends the caller's own session, named by their cookie",
    "load": "the banner's notices of the user's own account (info.view; nothing without billing.manage)",
    "switch_account": "moves the caller's own sign-in to another account of the same person (the service refuses any other)",
}
# States of the shell's parts that act on account data, with the permission they need: the
# header's logo uploads the Company page's logo; the chat box is every user's (info.view).
SHELL_PART_PERMISSIONS = {"HeaderLogoState": P.COMPANY_EDIT, "ChatState": P.INFO_VIEW}
# Calls a UI-only handler must not make: where data and money live.
DATA_MODULES = ("app.services", "app.db", "app.models", "app.payments")


def _state_classes() -> list[type[rx.State]]:
    def below(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return sorted(
        {c for c in below(rx.State) if c.__module__.startswith("app.") and not getattr(c, "_mixin", False)},
        key=lambda c: c.__name__,
    )


def _page_permissions() -> dict[str, P]:
    """State class name -> permission of the console page whose on_load it serves."""
    by_route = {entry.route: entry.permission for entry in NAV}
    pages = {}
    for _render, options in PAGES:
        if options.get("route") not in by_route:
            continue
        for handler in options.get("on_load") or []:
            owner = handler.fn.__qualname__.split(".")[0]
            if owner not in SHELL_STATES:
                pages[owner] = by_route[options["route"]]
    return {**pages, **SHELL_PART_PERMISSIONS}


def _operator(cls: type) -> bool:
    return cls.__module__.startswith(OPERATOR_MODULES) and cls.__module__ not in PUBLIC_PAGE_MODULES


def _tree(function) -> ast.FunctionDef:
    node = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    return node


def _method(cls: type, name: str):
    for klass in cls.__mro__:
        if name in vars(klass):
            value = vars(klass)[name]
            return getattr(value, "fn", value)
    return None


def _reachable(cls: type, function) -> list[tuple[str, Any, ast.FunctionDef]]:
    """The handler and the helpers it calls as self._x(...), transitively."""
    seen, queue, result = set(), [function], []
    while queue:
        current = queue.pop()
        if current in seen or not inspect.isfunction(current):
            continue
        seen.add(current)
        tree = _tree(current)
        result.append((current.__name__, current, tree))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "self"
            ):
                helper = _method(cls, node.func.attr)
                if helper is not None:
                    queue.append(helper)
    return result


def _calls(tree: ast.AST, *names: str) -> list[ast.Call]:
    return [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names
    ]


# The calls that load the signed-in actor and check a permission; `acting` then opens the
# handler's transaction itself, after the check.
CHECKS = ("current_actor", "acting")


def _checked_permission(call: ast.Call) -> P | None:
    if len(call.args) < 2:
        return None
    arg = call.args[1]
    assert isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "Permission", (
        f"the checked permission must be written Permission.X, not {ast.unparse(arg)}"
    )
    return P[arg.attr]


def _root(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute | ast.Call):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return node.id if isinstance(node, ast.Name) else ""


def _data_names(function) -> set[str]:
    """Names in the function's module bound to service, database, model or Stripe code."""
    module = inspect.getmodule(function)
    return {
        name
        for name, value in vars(module).items()
        if (getattr(value, "__module__", None) or getattr(value, "__name__", "")).startswith(DATA_MODULES)
    }


def test_every_state_belongs_to_a_console_page_or_a_public_page():
    pages = _page_permissions()
    for cls in _state_classes():
        if cls.__name__ in SHELL_STATES or cls.__module__ in PUBLIC_PAGE_MODULES or _operator(cls):
            continue
        assert cls.__name__ in pages, f"{cls.__module__}.{cls.__name__} is no console page's on_load state"
    for options in (o for _, o in PAGES):
        if options["route"] in {e.route for e in NAV}:
            assert not any(h.fn.__module__ in PUBLIC_PAGE_MODULES for h in options.get("on_load") or [])


def test_every_event_handler_checks_the_permission_of_its_page_on_the_server():
    pages = _page_permissions()
    problems = []
    checked = 0
    for cls in _state_classes():
        if cls.__module__ in PUBLIC_PAGE_MODULES or _operator(cls):
            continue
        page = pages.get(cls.__name__)
        allowed = {page, *STRICTER.get(page, ())} if page else set()
        for name, handler in cls.event_handlers.items():
            if not handler.fn.__module__.startswith("app."):
                continue  # Reflex's own (setvar only calls our explicit set_x handlers)
            where = f"{cls.__name__}.{name}"
            functions = _reachable(cls, handler.fn)
            checks = [call for _, _, tree in functions for call in _calls(tree, *CHECKS)]
            if name in UI_ONLY.get(cls.__name__, ()):
                if checks:
                    problems.append(f"{where} is listed in UI_ONLY but checks current_actor: take it off the list")
                for helper, function, tree in functions:
                    forbidden = _data_names(function)
                    used = sorted(
                        {
                            ast.unparse(n.func)
                            for n in ast.walk(tree)
                            if isinstance(n, ast.Call) and _root(n.func) in forbidden
                        }
                    )
                    if used:
                        problems.append(f"{where} is listed in UI_ONLY but {helper} calls {used}")
                continue
            if cls.__name__ in SHELL_STATES:
                if name not in SHELL_HANDLERS:
                    problems.append(f"{where} is new: say in SHELL_HANDLERS what it may do without a permission")
                elif name == "load_console" and not checks:
                    problems.append(f"{where} must load the signed-in user with current_actor")
                continue
            if not checks:
                problems.append(f"{where} never calls current_actor (and is not listed in UI_ONLY)")
                continue
            for call in checks:
                permission = _checked_permission(call)
                if permission not in allowed:
                    problems.append(f"{where} checks {permission}; its page needs {page}")
            checked += 1
    assert checked >= 30, "the handler scan found too few handlers to be looking at the pages"
    assert not problems, "\n".join(problems)


def test_every_operator_handler_loads_the_signed_in_operator_first():
    """Back-office handlers work only for a signed-in operator (their own cookie, their own table):
    each calls current_operator or operating before any transaction of its own."""
    problems, checked = [], 0
    for cls in _state_classes():
        if not _operator(cls):
            continue
        for name, handler in cls.event_handlers.items():
            if not handler.fn.__module__.startswith("app.") or name == "sign_out":
                continue  # sign_out ends only the session named by the caller's own cookie
            reached = _reachable(cls, handler.fn)
            if not any(_calls(tree, "current_operator", "operating") for _, _, tree in reached):
                problems.append(f"{cls.__name__}.{name} never loads the signed-in operator")
            for helper, _function, tree in reached:
                opened = _calls(tree, "transaction")
                checks = _calls(tree, "current_operator")
                if opened and (not checks or min(c.lineno for c in checks) > min(c.lineno for c in opened)):
                    problems.append(f"{cls.__name__}.{name}: {helper} opens a transaction before current_operator")
            checked += 1
    assert checked >= 8, "the scan found too few operator handlers"
    assert not problems, "\n".join(problems)


def test_every_transaction_in_a_handler_follows_the_permission_check():
    """No state reads or writes the database before it knows who asks: a function that opens a
    transaction either checks current_actor first or is handed the checked actor."""
    problems = []
    for cls in _state_classes():
        if cls.__module__ in PUBLIC_PAGE_MODULES or _operator(cls):
            continue
        for name, handler in cls.event_handlers.items():
            if not handler.fn.__module__.startswith("app.") or (cls.__name__, name) == (SHELL_STATE, "sign_out"):
                continue
            for helper, _function, tree in _reachable(cls, handler.fn):
                opened = _calls(tree, "transaction")
                if not opened or "actor" in [a.arg for a in tree.args.args]:
                    continue
                first_check = min(((c.lineno, c.col_offset) for c in _calls(tree, *CHECKS)), default=None)
                if first_check is None or first_check > min((c.lineno, c.col_offset) for c in opened):
                    problems.append(f"{cls.__name__}.{name}: {helper} opens a transaction before current_actor")
    assert not problems, "\n".join(problems)


def test_pages_take_the_account_only_from_the_checked_actor():
    """No id from the browser picks the account: every `x.account_id` a console state reads is
    the server-loaded actor's."""
    problems = []
    for cls in _state_classes():
        if cls.__module__ in PUBLIC_PAGE_MODULES or _operator(cls):
            continue
        tree = ast.parse(inspect.getsource(inspect.getmodule(cls)))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "account_id"
                and not (isinstance(node.value, ast.Name) and node.value.id == "actor")
            ):
                problems.append(f"{cls.__module__}:{node.lineno} reads {ast.unparse(node)}")
    assert not problems, "\n".join(problems)


# --- HTTP routes ---------------------------------------------------------------------------

# Every route of create_api() and who may call it.
ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/usage"): "api key",
    ("POST", "/api/v1/usage/batch"): "api key",
    ("GET", "/api/v1/balance"): "api key",
    ("POST", "/api/v1/holds"): "api key",
    ("POST", "/api/v1/holds/{hold_id}/capture"): "api key",
    ("POST", "/api/v1/holds/{hold_id}/release"): "api key",
    ("GET", "/api/account/logo"): "session",
    ("GET", "/api/profile/picture"): "session",
    ("GET", "/api/invoices/{invoice_id}/pdf"): "session",
    ("GET", "/auth/session"): "sign-in step",
    ("POST", "/auth/sign-out"): "sign-in step",
    ("GET", "/operator/auth/session"): "operator sign-in step",
    ("POST", "/operator/auth/sign-out"): "operator sign-in step",
    ("POST", "/operator/auth/view-as/exit"): "operator sign-in step",
    ("POST", "/api/webhooks/stripe"): "stripe signature",
    ("GET", "/api/health"): "public",
    ("GET", "/api/ready"): "public",
    ("GET", "/metrics"): "allowed addresses",
    ("GET", "/api/v1/openapi.json"): "public",
    ("GET", "/api/v1/docs"): "public",
    ("GET", "/api/v1/docs/swagger-ui-bundle.js"): "public",
    ("GET", "/api/v1/docs/swagger-ui.css"): "public",
    ("GET", "/api/v1/docs/favicon-32x32.png"): "public",
    ("POST", "/api/operator/v1/accounts"): "operator key",
    ("GET", "/api/operator/v1/accounts"): "operator key",
    ("GET", "/api/operator/v1/accounts/{account_id}"): "operator key",
    ("POST", "/api/operator/v1/accounts/{account_id}/credits"): "operator key",
    ("PUT", "/api/operator/v1/accounts/{account_id}/plan"): "operator key",
    ("POST", "/api/operator/v1/accounts/{account_id}/suspend"): "operator key",
    ("POST", "/api/operator/v1/accounts/{account_id}/reactivate"): "operator key",
    ("GET", "/api/operator/v1/openapi.json"): "public",
    ("GET", "/api/operator/v1/docs"): "public",
    ("GET", "/api/operator/v1/docs/swagger-ui-bundle.js"): "public",
    ("GET", "/api/operator/v1/docs/swagger-ui.css"): "public",
    ("GET", "/api/operator/v1/docs/favicon-32x32.png"): "public",
}
CATCH_ALL = "/api/{rest:path}"
# Routes for signed-in users (session cookie) and the permission each needs.
SESSION_ROUTES = {
    "/api/account/logo": P.INFO_VIEW,
    "/api/profile/picture": P.INFO_VIEW,
    "/api/invoices/{invoice_id}/pdf": P.BILLING_VIEW,
}
# Routes that take an id, and the test that gives them another account's id.
ID_ROUTES = {
    "/api/invoices/{invoice_id}/pdf": "test_tenant_isolation.py::test_an_invoice_pdf_is_served_only_to_its_own_account",
    **{
        f"/api/v1/holds/{{hold_id}}/{action}": "test_holds.py::test_a_capture_of_more_than_the_hold_and_holds_of_other_accounts_are_refused"
        for action in ("capture", "release")
    },
    # Operator keys reach every account by design; customers' keys and sessions reach none of these.
    **{
        f"/api/operator/v1/accounts/{{account_id}}{tail}": "test_operator_api.py::test_customer_keys_and_sessions_reach_no_operator_route"
        for tail in ("", "/credits", "/plan", "/suspend", "/reactivate")
    },
}


def _flatten(routes, prefix: str = ""):
    """(path, route) of every route, included routers' routes too."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flatten(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, route


def _routes() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, route in _flatten(create_api().routes)
        if path != CATCH_ALL
        for method in route.methods
        if method != "HEAD"
    }


def test_the_route_table_names_every_route_and_no_route_takes_an_id():
    found = _routes()
    assert ("POST", "/api/v1/usage") in found, "the route walk no longer sees included routers"
    assert not found - set(ROUTES), f"Routes missing from ROUTES (say who may call them): {sorted(found - set(ROUTES))}"
    assert not set(ROUTES) - found, f"ROUTES names routes that are gone: {sorted(set(ROUTES) - found)}"
    assert set(SESSION_ROUTES) == {path for (_, path), who in ROUTES.items() if who == "session"}
    with_ids = {path for _, path in found if "{" in path}
    assert with_ids <= set(ID_ROUTES), (
        f"Routes that take an id need a tenant isolation test (test_tenant_isolation.py): {sorted(with_ids - set(ID_ROUTES))}"
    )


@pytest.fixture
def client(engine, monkeypatch):
    monkeypatch.setattr(auth_routes, "transaction", lambda: transaction(engine))
    monkeypatch.setattr(operator_auth, "transaction", lambda: transaction(engine))
    api = create_api()
    api.dependency_overrides[metering_api.metering_engine] = lambda: engine
    api.dependency_overrides[files.files_engine] = lambda: engine
    api.dependency_overrides[invoices_api.invoices_engine] = lambda: engine
    api.dependency_overrides[stripe_webhook.webhook_engine] = lambda: engine
    api.dependency_overrides[health_api.health_engine] = lambda: engine
    api.dependency_overrides[operator_api.operator_engine] = lambda: engine
    health.beat(engine, "matrix-test")  # /api/ready answers 200 with a job worker running
    with TestClient(api, follow_redirects=False) as client:
        yield client


def test_routes_refuse_callers_without_credentials(session, client, webhook_secret):
    account = make_populated_account(session, "acme")
    api_keys.delete_key(session, signed_in_actor(session, account.owner_email), account.api_key)
    session.commit()
    bodies = {
        "/api/v1/usage": {"amount_cents": 5},
        "/api/v1/usage/batch": {"events": [{"amount_cents": 5}]},
        "/api/v1/holds": {"amount_cents": 5, "ttl_seconds": 60},
        "/api/v1/holds/{hold_id}/capture": {"amount_cents": 5},
        "/api/operator/v1/accounts": {"name": "Mine", "owner_email": "me@example.com"},
        "/api/operator/v1/accounts/{account_id}/credits": {"amount_cents": 5, "reason": "mine"},
        "/api/operator/v1/accounts/{account_id}/plan": {"plan": "custom", "reason": "mine"},
        "/api/operator/v1/accounts/{account_id}/suspend": {"reason": "mine"},
        "/api/operator/v1/accounts/{account_id}/reactivate": {"reason": "mine"},
    }
    _, live_customer_key = api_keys.create_key(session, signed_in_actor(session, account.owner_email), "Live")
    customer_session = signed_in_token(session, account.owner_email)
    account_public_id = session.get(Account, account.account_id).public_id
    session.commit()
    for (method, template), who in ROUTES.items():
        body = bodies.get(template)
        path = template.format(invoice_id=account.invoice, account_id=account_public_id, hold_id="hold_X")
        if who == "api key":
            for headers in (
                {},
                {"Authorization": "Bearer ld_" + "x" * 40},
                {"Authorization": f"Bearer {account.full_key}"},
            ):
                response = client.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json()["error"]["code"] == "invalid_api_key"
        elif who == "operator key":
            for headers in (
                {},
                {"Authorization": "Bearer ldop_" + "x" * 40},
                {"Authorization": f"Bearer {live_customer_key}"},
                {"Authorization": f"Bearer {customer_session}"},
                {"Cookie": f"{auth.SESSION_COOKIE}={customer_session}"},
            ):
                response = client.request(method, path, json=body, headers={**headers, "Idempotency-Key": "k1"})
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json()["error"]["code"] == "invalid_api_key"
        elif who == "session":
            assert client.request(method, path).status_code == 401
            client.cookies.set(auth.SESSION_COOKIE, "not-a-session")
            assert client.request(method, path).status_code == 401
            client.cookies.clear()
        elif who == "stripe signature":
            response = client.request(method, path, content=b'{"id": "evt_1", "type": "ping"}')
            assert response.status_code == 400
        elif who == "sign-in step" and path == "/auth/session":
            response = client.get(path, params={"code": "forged", "next": "/team"})
            assert response.status_code == 303 and response.headers["location"] == "/sign-in?expired=1"
            assert auth.SESSION_COOKIE not in response.cookies
        elif who == "sign-in step":
            response = client.post(path, headers={"Origin": "http://testserver"}, follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"] == "/sign-in"
        elif who == "allowed addresses":
            # METRICS_ALLOWED_IPS (loopback by default) does not hold the test client's address.
            assert client.request(method, path).status_code == 403, path
        elif who == "operator sign-in step" and method == "GET":
            client.cookies.set(auth.SESSION_COOKIE, customer_session)
            response = client.get(path, params={"code": "forged", "next": "/operator"})
            client.cookies.clear()
            assert response.status_code == 303 and response.headers["location"] == "/operator/sign-in?expired=1"
            assert "ld_operator" not in response.cookies
        elif who == "operator sign-in step":
            response = client.post(path, headers={"Origin": "https://evil.example"}, follow_redirects=False)
            assert response.status_code == 403
        else:
            assert client.request(method, path).status_code == 200, path
    entries = session.exec(select(LedgerEntry.description)).all()
    assert entries == ["Welcome credits"], "a refused call moved money"


def test_session_routes_answer_each_role_as_its_permissions_say(session, client):
    for number, role in enumerate(ROLE_PERMISSIONS):
        world = _world(session, role, f"h{number}")
        client.cookies.set(auth.SESSION_COOKIE, signed_in_token(session, world.actor.email))
        profile.save_picture(session, world.actor, PNG)
        session.commit()
        for template, permission in SESSION_ROUTES.items():
            response = client.get(template.format(invoice_id=world.account.invoice))
            expected = 200 if permission in ROLE_PERMISSIONS[role] else 403
            assert response.status_code == expected, (role, template, response.text)


# --- "View as" ------------------------------------------------------------------------------

# Pages an operator viewing an account must read as its Owner does.
VIEWER_READS = {
    "billing_overview.overview_view",
    "balance_history.history_page",
    "invoices.history",
    "payment_methods.methods_on_file",
    "team.team_view",
    "info.account_info",
    "audit.events",
}


def test_an_operator_viewing_an_account_reads_its_pages_and_changes_nothing(engine, monkeypatch):
    """Every service function, called by the reader of an operator's "View as" in a read-only
    transaction as `acting` opens it: the Owner's pages read, and nothing is written, uploaded or
    asked of Stripe but reads (the gateway is reached only for retrieve and list)."""
    from app.db import read_only
    from app.errors import DomainError, changes_refused
    from app.payments import gateway
    from app.services.operator import accounts as operator_accounts
    from app.services.operator import staff

    asked: list[str] = []

    def reached(method, *_args, **_kwargs):
        operation = getattr(getattr(method, "func", method), "__qualname__", "unknown")
        asked.append(operation)
        raise StripeReached(operation)

    monkeypatch.setattr(gateway, "_raising_ours", reached)
    with Session(engine) as setup:
        world = _world(setup, "owner", "viewed")
        user, link = staff.create_operator(setup, "ops@ledgerdesk.example", base_url="http://console")
        staff.accept_invitation(setup, link.split("token=")[1], "an-operator-passphrase")
        outcome = staff.sign_in(setup, "ops@ledgerdesk.example", "an-operator-passphrase")
        operator = staff.operator_for_token(
            setup, staff.start_session(setup, outcome.handoff_code, binding=outcome.binding)
        )
        account_public_id = setup.get_one(Account, world.account.account_id).public_id
        code = operator_accounts.view_as(setup, operator, account_public_id, reason="Ticket 7")
        token, _ = staff.start_viewing(setup, code.handoff_code, binding=code.binding)
        setup.commit()
        before = db_snapshot(setup)
    problems, read = [], set()
    for name, (_permission, call) in sorted(MATRIX.items()):
        with Session(engine) as session:
            viewer = staff.viewer_for_token(session, token)
            assert viewer is not None and viewer.viewing
            session.commit()
            read_only(session, staff.ViewingReadOnly())
            refused = changes_refused.set(staff.ViewingReadOnly())
            asked.clear()
            try:
                call(World(session, viewer, world.account, world.member_role_id))
                read.add(name)
            except StripeReached:
                if not all(op.endswith((".retrieve", ".list")) for op in asked):
                    problems.append(f"{name} asked Stripe for {asked}")
            except DomainError:
                pass
            except Exception as exc:
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
            finally:
                changes_refused.reset(refused)
                session.rollback()
    with Session(engine) as after:
        changed = [table for table, rows in db_snapshot(after).items() if rows != before[table]]
    assert not problems, "\n".join(problems)
    assert not changed, f"viewing changed {changed}"
    assert read >= VIEWER_READS, f"the viewer could not read {sorted(VIEWER_READS - read)}"
