"""Tax registrations: numbers checked by python-stdnum per country and type, stored normalized,
added to and removed from the Stripe customer (localstripe), whose verification status is shown
and kept current by the customer.tax_id.updated webhook."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.config import get_settings
from app.errors import FormInvalid, NotFound, PermissionDenied
from app.models import TaxRegistration
from app.payments import gateway
from app.services import stripe_events, tax
from app.services.customers import stripe_customer_id
from tests.factories import actor_for, make_user, owner_and_account
from tests.stripe_fixtures import point_stripe_at

pytestmark = pytest.mark.usefixtures("localstripe")  # the owner's account is billed through (local) Stripe


def _stripe_tax_ids(session, account_id) -> list[tuple[str, str]]:
    customer = stripe_customer_id(session, account_id)
    listing = gateway.client().v1.customers.tax_ids.list(customer).to_dict()
    return [(row["type"], row["value"]) for row in listing["data"]]


def _rows(session, account_id):
    return session.exec(select(TaxRegistration).where(TaxRegistration.account_id == account_id)).all()


@pytest.mark.parametrize(
    ("country", "tax_type", "typed", "stored"),
    [
        ("DE", "eu_vat", "de 136 695 976", "DE136695976"),
        ("DE", "eu_vat", "136695976", "DE136695976"),
        ("GR", "eu_vat", "094259216", "EL094259216"),
        ("GB", "gb_vat", "GB 980 7806 84", "GB980780684"),
        ("CH", "ch_vat", "CHE100155212MWST", "CHE-100.155.212 MWST"),
        ("US", "us_ein", "042103594", "04-2103594"),
        ("AU", "au_abn", "51 824 753 556", "51824753556"),
        ("ES", "es_cif", "a-13585625", "A13585625"),
    ],
)
def test_valid_numbers_are_stored_the_way_stripe_writes_them(country, tax_type, typed, stored):
    assert tax.normalize(country, tax_type, typed) == stored


@pytest.mark.parametrize(
    ("country", "tax_type", "typed", "field", "message"),
    [
        (
            "DE",
            "eu_vat",
            "DE136695977",
            "value",
            "This is not a valid European VAT number of Germany (the number's checksum or check digit is invalid).",
        ),
        (
            "DE",
            "eu_vat",
            "DE12",
            "value",
            "This is not a valid European VAT number of Germany (the number has an invalid length).",
        ),
        ("DE", "eu_vat", "FR40303265045", "value", "A VAT number of Germany starts with DE."),
        (
            "US",
            "us_ein",
            "12-345",
            "value",
            "This is not a valid United States EIN (the number has an invalid format), such as 04-2103594.",
        ),
        ("DE", "eu_vat", "  ", "value", "Enter the tax ID."),
        ("DE", "gb_vat", "GB980780684", "type", "Select a tax ID type offered for this country."),
        ("ZZ", "eu_vat", "DE136695976", "country", "Select a country from the list."),
    ],
)
def test_invalid_input_is_refused_field_by_field(country, tax_type, typed, field, message):
    with pytest.raises(FormInvalid) as refused:
        tax.normalize(country, tax_type, typed)
    assert refused.value.errors == {field: message}


def test_a_valid_eu_vat_number_is_added_to_stripe_and_shows_stripes_verification(session, owner):
    actor, account = owner
    verified = tax.add_registration(session, actor, country="DE", tax_type="eu_vat", value="DE 136695976")
    unverified = tax.add_registration(session, actor, country="PL", tax_type="eu_vat", value="PL1111111111")
    session.commit()
    assert (verified.value, verified.status, tax.describe(verified.type)) == (
        "DE136695976",
        "verified",
        "European VAT number",
    )
    assert unverified.status == "unverified" and unverified.stripe_tax_id.startswith("txi_")
    assert _stripe_tax_ids(session, account.id) == [("eu_vat", "DE136695976"), ("eu_vat", "PL1111111111")]
    assert [r.value for r in tax.registrations(session, actor)] == ["DE136695976", "PL1111111111"]
    assert tax.printed(session, account.id) == ["European VAT number DE136695976", "European VAT number PL1111111111"]


def test_invalid_or_duplicate_numbers_change_nothing_here_or_at_stripe(session, owner):
    actor, account = owner
    tax.add_registration(session, actor, country="DE", tax_type="eu_vat", value="DE136695976")
    session.commit()
    for value in ("DE136695977", "de136695976"):
        with pytest.raises(FormInvalid) as refused:
            tax.add_registration(session, actor, country="DE", tax_type="eu_vat", value=value)
        assert refused.value.field == "value"
    assert refused.value.message == "This tax ID is already registered."
    session.rollback()
    assert len(_rows(session, account.id)) == 1 and len(_stripe_tax_ids(session, account.id)) == 1


def test_a_number_stripe_refuses_is_not_stored(session, owner):
    actor, account = owner
    # localstripe knows only a few types; real Stripe refuses numbers it cannot use the same way.
    with pytest.raises(FormInvalid) as refused:
        tax.add_registration(session, actor, country="GB", tax_type="gb_vat", value="GB980780684")
    assert refused.value.field == "value" and refused.value.message.startswith("Stripe did not accept this tax ID")
    session.rollback()
    assert _rows(session, account.id) == []


def test_a_registration_is_removed_here_and_at_stripe(session, owner):
    actor, account = owner
    kept = tax.add_registration(session, actor, country="DE", tax_type="eu_vat", value="DE136695976")
    gone = tax.add_registration(session, actor, country="PL", tax_type="eu_vat", value="PL1111111111")
    session.commit()
    tax.remove_registration(session, actor, gone.public_id)
    session.commit()
    assert [r.public_id for r in _rows(session, account.id)] == [kept.public_id]
    assert _stripe_tax_ids(session, account.id) == [("eu_vat", "DE136695976")]


def test_the_webhook_keeps_the_status_current_and_drops_ids_deleted_in_stripe(session, owner):
    actor, account = owner
    row = tax.add_registration(session, actor, country="PL", tax_type="eu_vat", value="PL1111111111")
    session.commit()
    customer = stripe_customer_id(session, account.id)
    updated = {
        "id": row.stripe_tax_id,
        "object": "tax_id",
        "customer": customer,
        "verification": {"status": "verified"},
    }
    stripe_events.record_and_handle(
        session, {"id": "evt_u", "type": "customer.tax_id.updated", "data": {"object": updated}}
    )
    session.commit()
    session.refresh(row)
    assert row.status == "verified"
    stripe_events.record_and_handle(
        session, {"id": "evt_d", "type": "customer.tax_id.deleted", "data": {"object": updated}}
    )
    session.commit()
    assert _rows(session, account.id) == []


def test_only_billing_managers_change_registrations_and_only_their_own(session, owner):
    actor, account = owner
    row = tax.add_registration(session, actor, country="DE", tax_type="eu_vat", value="DE136695976")
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    other_actor, _ = owner_and_account(session, email="owner@other.example")
    session.commit()
    with pytest.raises(PermissionDenied):
        tax.add_registration(session, member, country="DE", tax_type="eu_vat", value="DE811907980")
    with pytest.raises(PermissionDenied):
        tax.remove_registration(session, member, row.public_id)
    with pytest.raises(NotFound):
        tax.remove_registration(session, other_actor, row.public_id)
    assert len(_rows(session, account.id)) == 1


@pytest.fixture
def stripe_unreachable(monkeypatch):
    point_stripe_at(monkeypatch, "http://127.0.0.1:9")
    yield
    get_settings.cache_clear()


def test_without_stripe_nothing_is_stored(session, stripe_unreachable):
    actor, account = owner_and_account(session)
    with pytest.raises(FormInvalid) as refused:
        tax.add_registration(session, actor, country="DE", tax_type="eu_vat", value="DE136695976")
    assert refused.value.message.startswith("Stripe did not accept this tax ID")
    session.rollback()
    assert _rows(session, account.id) == []
