"""Payment Methods against a real localstripe process, on SQLite and PostgreSQL: the default card
(ours and the Stripe customer's invoice default), deleting cards, and who may do what."""

from __future__ import annotations

import logging
import threading
from datetime import date

import httpx
import pytest
from sqlmodel import Session, select

from app.config import get_settings
from app.demo import payment_methods as demo_cards
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import PaymentMethod, utcnow
from app.payments import gateway
from app.services import audit, payment_methods
from app.services.customers import stripe_customer_id
from app.services.overview import billing_settings
from tests.factories import actor_for, make_user, owner_and_account
from tests.stripe_fixtures import free_port, point_stripe_at

pytestmark = pytest.mark.usefixtures("localstripe")  # the owner's account is billed through (local) Stripe


def new_card(base_url: str, number: str = "4242424242424242", exp_year: int = 2030, name: str = "Olivia Owner") -> str:
    """A payment method as localstripe's Stripe.js creates it from the Card Element."""
    response = httpx.post(
        f"{base_url}/v1/payment_methods",
        auth=(get_settings().stripe_secret_key, ""),
        data={
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": str(exp_year),
            "card[cvc]": "123",
            "billing_details[name]": name,
        },
    )
    response.raise_for_status()
    return response.json()["id"]


def add_card(session, actor, base_url: str, number: str = "4242424242424242", **kwargs) -> str:
    saved = payment_methods.save_card(session, actor, new_card(base_url, number, **kwargs))
    session.commit()
    return saved.stripe_payment_method_id


def cards(session, account_id: int) -> dict[str, PaymentMethod]:
    rows = session.exec(select(PaymentMethod).where(PaymentMethod.account_id == account_id))
    return {row.stripe_payment_method_id: row for row in rows}


def stripe_view(session, account_id: int) -> tuple[set[str], str]:
    """The customer's cards and invoice default, as Stripe itself has them."""
    listed, default = gateway.list_cards(stripe_customer_id(session, account_id))
    return {card.id for card in listed}, default


def test_the_first_card_is_the_default_and_set_default_moves_it_here_and_in_stripe(session, owner, localstripe):
    actor, account = owner
    first = add_card(session, actor, localstripe)
    second = add_card(session, actor, localstripe, "5555555555554444")
    assert cards(session, account.id)[first].is_default and not cards(session, account.id)[second].is_default
    assert stripe_view(session, account.id) == ({first, second}, first)

    chosen = payment_methods.set_default(session, actor, second)
    session.commit()
    assert chosen.stripe_payment_method_id == second and chosen.is_default
    rows = cards(session, account.id)
    assert rows[second].is_default and not rows[first].is_default
    assert stripe_view(session, account.id) == ({first, second}, second)
    assert [m.last4 for m in payment_methods.saved_methods(session, actor)] == ["4444", "4242"]


def test_deleting_a_card_that_is_not_the_default_keeps_the_default(session, owner, localstripe):
    actor, account = owner
    default = add_card(session, actor, localstripe)
    other = add_card(session, actor, localstripe, "5555555555554444")

    payment_methods.delete_method(session, actor, other)
    session.commit()
    assert list(cards(session, account.id)) == [default] and cards(session, account.id)[default].is_default
    assert stripe_view(session, account.id) == ({default}, default)


def test_deleting_the_default_card_needs_one_of_the_others_as_new_default(session, owner, localstripe):
    actor, account = owner
    default = add_card(session, actor, localstripe)
    second = add_card(session, actor, localstripe, "5555555555554444")
    third = add_card(session, actor, localstripe, "4000056655665556")
    other_actor, _ = owner_and_account(session, email="other@example.com")
    foreign = add_card(session, other_actor, localstripe)

    for missing_or_wrong in ("", default, foreign, "pm_nope"):
        with pytest.raises(ValidationFailed) as refused:
            payment_methods.delete_method(session, actor, default, new_default_id=missing_or_wrong)
        assert refused.value.field == "new_default"
    assert set(cards(session, account.id)) == {default, second, third}

    payment_methods.delete_method(session, actor, default, new_default_id=third)
    session.commit()
    rows = cards(session, account.id)
    assert set(rows) == {second, third} and rows[third].is_default and not rows[second].is_default
    assert stripe_view(session, account.id) == ({second, third}, third)


@pytest.mark.parametrize(
    ("plan_code", "auto_recharge", "reason"),
    [
        ("pro", False, "Your Pro plan is billed to this card. Add another card before deleting this one."),
        ("business", False, "Your Business plan is billed to this card. Add another card before deleting this one."),
        (
            "basic",
            True,
            "Auto recharge charges this card. Turn off auto recharge or add another card before deleting this one.",
        ),
    ],
    ids=["pro-plan", "business-plan", "auto-recharge"],
)
def test_the_last_card_cannot_be_deleted_while_something_depends_on_it(
    session, owner, localstripe, plan_code, auto_recharge, reason
):
    actor, account = owner
    only = add_card(session, actor, localstripe)
    account.plan_code = plan_code
    billing_settings(session, account.id).auto_recharge_enabled = auto_recharge
    session.commit()

    assert payment_methods.deletion_blocker(session, actor, only) == reason
    with pytest.raises(Conflict) as refused:
        payment_methods.delete_method(session, actor, only)
    assert refused.value.message == reason
    assert list(cards(session, account.id)) == [only]
    assert stripe_view(session, account.id) == ({only}, only)

    # With a second card on file the first one can go.
    spare = add_card(session, actor, localstripe, "5555555555554444")
    payment_methods.delete_method(session, actor, only, new_default_id=spare)
    session.commit()
    assert list(cards(session, account.id)) == [spare] and cards(session, account.id)[spare].is_default


@pytest.mark.parametrize("plan_code", ["basic", "custom"])
def test_the_last_card_can_be_deleted_when_nothing_depends_on_it(session, owner, localstripe, plan_code):
    actor, account = owner
    only = add_card(session, actor, localstripe)
    account.plan_code = plan_code
    session.commit()

    assert payment_methods.deletion_blocker(session, actor, only) == ""
    payment_methods.delete_method(session, actor, only)
    session.commit()
    assert cards(session, account.id) == {}
    assert stripe_view(session, account.id) == (set(), "")


def test_invoice_priced_accounts_cannot_add_or_choose_cards(session, owner, localstripe):
    actor, account = owner
    card = add_card(session, actor, localstripe)
    billing_settings(session, account.id).invoice_priced = True
    session.commit()

    for attempt in (
        lambda: payment_methods.start_card_setup(session, actor),
        lambda: payment_methods.save_card(session, actor, new_card(localstripe)),
        lambda: payment_methods.set_default(session, actor, card),
    ):
        with pytest.raises(ValidationFailed) as refused:
            attempt()
        assert refused.value.message == payment_methods.INVOICE_PRICED_MESSAGE
    assert list(cards(session, account.id)) == [card]
    assert stripe_view(session, account.id) == ({card}, card)


def test_a_member_cannot_see_or_change_cards(session, owner, localstripe):
    actor, account = owner
    first = add_card(session, actor, localstripe)
    second = add_card(session, actor, localstripe, "5555555555554444")
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    session.commit()

    for attempt in (
        lambda: payment_methods.saved_methods(session, member),
        lambda: payment_methods.start_card_setup(session, member),
        lambda: payment_methods.save_card(session, member, new_card(localstripe)),
        lambda: payment_methods.set_default(session, member, second),
        lambda: payment_methods.delete_method(session, member, second),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    assert set(cards(session, account.id)) == {first, second} and cards(session, account.id)[first].is_default
    assert stripe_view(session, account.id) == ({first, second}, first)


def test_another_accounts_card_is_not_found(session, owner, localstripe):
    actor, account = owner
    mine = add_card(session, actor, localstripe)
    other_actor, other_account = owner_and_account(session, email="other@example.com")
    theirs = add_card(session, other_actor, localstripe)
    add_card(session, other_actor, localstripe, "5555555555554444")

    with pytest.raises(NotFound):
        payment_methods.set_default(session, actor, theirs)
    with pytest.raises(NotFound):
        payment_methods.delete_method(session, actor, theirs)
    with pytest.raises(NotFound):
        payment_methods.save_card(session, actor, theirs)
    assert list(cards(session, account.id)) == [mine]
    assert theirs in cards(session, other_account.id) and cards(session, other_account.id)[theirs].is_default
    assert stripe_view(session, other_account.id)[1] == theirs


def test_expired_cards_are_detected(session, owner, localstripe):
    actor, account = owner
    old = add_card(session, actor, localstripe, "5555555555554444", exp_year=2020)
    current = add_card(session, actor, localstripe)
    rows = cards(session, account.id)
    today = date(2026, 11, 22)
    assert payment_methods.is_expired(rows[old], today)
    assert not payment_methods.is_expired(rows[current], today)
    assert payment_methods.expiry(rows[old]) == "12/2020" and rows[old].holder_name == "Olivia Owner"

    # A card is good through the last day of its expiry month.
    december_2026 = PaymentMethod(account_id=account.id, stripe_payment_method_id="pm_x", exp_month=12, exp_year=2026)
    assert not payment_methods.is_expired(december_2026, date(2026, 12, 31))
    assert payment_methods.is_expired(december_2026, date(2027, 1, 1))


def test_two_cards_with_the_same_last_digits_are_told_apart_by_their_expiry(session, owner, localstripe):
    actor, _ = owner
    first = add_card(session, actor, localstripe, exp_year=2030)
    alone = {m.id: m.label for m in payment_methods.methods_on_file(session, actor).methods}
    assert alone == {first: "Visa •••• 4242"}
    second = add_card(session, actor, localstripe, exp_year=2031)
    other = add_card(session, actor, localstripe, "5555555555554444")
    labels = {m.id: m.label for m in payment_methods.methods_on_file(session, actor).methods}
    assert labels == {
        first: "Visa •••• 4242 (exp 12/30)",
        second: "Visa •••• 4242 (exp 12/31)",
        other: "Visa •••• 4444",  # localstripe calls every card a Visa
    }
    # The messages too: the audit log names the one that was added.
    assert audit.events(session, actor, category="payment_method").rows[1].summary == "Added Visa •••• 4242 (exp 12/31)"


def test_the_demo_card_is_a_default_visa_seeded_once(session, localstripe):
    _, account = owner_and_account(session)
    demo_cards.seed(session, account, now=utcnow())
    demo_cards.seed(session, account, now=utcnow())
    session.commit()

    [card] = cards(session, account.id).values()
    assert (card.brand, card.last4, card.is_default, card.holder_name) == ("visa", "4242", True, account.name)
    assert stripe_view(session, account.id) == ({card.stripe_payment_method_id}, card.stripe_payment_method_id)


@pytest.fixture
def stripe_unreachable(monkeypatch):
    point_stripe_at(monkeypatch, f"http://127.0.0.1:{free_port()}")
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_seeding_without_stripe_warns_and_saves_no_card(session, stripe_unreachable, caplog):
    _, account = owner_and_account(session)
    with caplog.at_level(logging.WARNING, logger="ledgerdesk.seed"):
        demo_cards.seed(session, account, now=utcnow())
    session.commit()
    assert cards(session, account.id) == {}
    assert "Stripe is not reachable" in caplog.text


def test_two_deletes_at_once_never_leave_a_paid_plan_without_a_card(pg_engine, localstripe):
    """On PostgreSQL, where the two transactions really overlap."""
    with Session(pg_engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        account.plan_code = "pro"
        session.commit()
        first = add_card(session, actor, localstripe)
        second = add_card(session, actor, localstripe, "5555555555554444")

    start = threading.Barrier(2)
    outcomes: list[str] = []

    def delete(card: str) -> None:
        start.wait()
        try:
            with Session(pg_engine) as session:
                payment_methods.delete_method(session, actor, card, new_default_id=second)
                session.commit()
            outcomes.append("deleted")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=delete, args=(card,)) for card in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["deleted", "refused"]
    with Session(pg_engine) as session:
        [left] = cards(session, account.id).values()
        assert left.is_default
        assert stripe_view(session, account.id) == ({left.stripe_payment_method_id}, left.stripe_payment_method_id)
