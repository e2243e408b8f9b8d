"""Invoice Address and Invoice Notifications: every field checked (countries and regions from
pycountry, postal codes per country), the address stored here and on the Stripe customer, and
the billing email checked with email-validator."""

from __future__ import annotations

import pytest

from app.config import get_settings
from app.errors import FormInvalid, PermissionDenied, ValidationFailed
from app.payments import gateway
from app.services import address, billing_details
from app.services.customers import stripe_customer_id
from app.services.overview import billing_settings
from tests.factories import make_user
from tests.stripe_fixtures import actor_for, owner_and_account, point_stripe_at

pytestmark = pytest.mark.usefixtures("localstripe")  # the owner's account is billed through (local) Stripe

BERLIN = {
    "company_name": " Acme  Europe GmbH ",
    "address1": "Friedrichstraße 68",
    "address2": "",
    "city": "Berlin",
    "postal_code": "10117",
    "region": "berlin",
    "country": "de",
    "po_number": "PO-7731",
}


def test_an_address_is_trimmed_and_its_country_and_region_normalized():
    address = billing_details.check_address(BERLIN)
    assert (address.company_name, address.country, address.region) == ("Acme Europe GmbH", "DE", "Berlin")


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"company_name": "", "address1": " ", "city": ""},
            {
                "company_name": "Enter the company name.",
                "address1": "Enter the street address.",
                "city": "Enter the city.",
            },
        ),
        ({"country": ""}, {"country": "Select a country."}),
        ({"country": "XX"}, {"country": "Select a country from the list."}),
        ({"postal_code": "1011"}, {"postal_code": "Enter a postal code of Germany, such as 10115."}),
        ({"postal_code": ""}, {"postal_code": "Enter the postal code."}),
        ({"region": "Texas"}, {"region": "Select a region or province of Germany."}),
        ({"country": "US", "region": "", "postal_code": "94104"}, {"region": "Select a region or province."}),
        (
            {"country": "US", "region": "California", "postal_code": "9410"},
            {"postal_code": "Enter a postal code of United States, such as 12345 or 12345-6789."},
        ),
        (
            {"country": "KE", "region": "", "postal_code": "!!"},
            {"postal_code": "Enter a postal code of 2 to 10 letters and digits."},
        ),
        ({"po_number": "P" * 101}, {"po_number": "Use at most 100 characters."}),
    ],
)
def test_bad_input_is_refused_field_by_field(changes, errors):
    with pytest.raises(FormInvalid) as refused:
        billing_details.check_address({**BERLIN, **changes})
    assert refused.value.errors == errors


def test_countries_without_postal_codes_need_none():
    address = billing_details.check_address(
        {**BERLIN, "country": "QA", "region": "", "postal_code": "", "city": "Doha"}
    )
    assert address.postal_code == ""


def test_regions_come_from_the_countrys_subdivisions():
    names = [name for _, name in address.regions("US")]
    assert "California" in names and "Texas" in names
    assert [name for _, name in address.regions("GB")] == ["England", "Northern Ireland", "Scotland", "Wales"]


def _stripe_customer(session, account_id) -> dict:
    customer = stripe_customer_id(session, account_id)
    return gateway.client().v1.customers.retrieve(customer).to_dict()


def test_saving_stores_the_address_and_sets_it_on_the_stripe_customer(session, owner):
    actor, account = owner
    billing_details.save_address(
        session,
        actor,
        {**BERLIN, "country": "US", "region": "California", "city": "San Francisco", "postal_code": "94104"},
    )
    session.commit()
    settings = billing_settings(session, account.id)
    assert (settings.invoice_company_name, settings.invoice_region, settings.invoice_po_number) == (
        "Acme Europe GmbH",
        "California",
        "PO-7731",
    )
    customer = _stripe_customer(session, account.id)
    assert customer["name"] == "Acme Europe GmbH"
    assert customer["address"] == {
        "line1": "Friedrichstraße 68",
        "line2": "",
        "city": "San Francisco",
        "postal_code": "94104",
        "state": "CA",
        "country": "US",
    }
    assert billing_details.address_lines(settings, account.name) == [
        "Acme Europe GmbH",
        "Friedrichstraße 68",
        "San Francisco, CA 94104",
        "United States",
    ]


def test_a_member_cannot_change_the_address(session, owner):
    _, account = owner
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    with pytest.raises(PermissionDenied):
        billing_details.save_address(session, member, BERLIN)
    assert billing_settings(session, account.id).invoice_address1 == ""


@pytest.fixture
def stripe_unreachable(monkeypatch):
    point_stripe_at(monkeypatch, "http://127.0.0.1:9")
    yield
    get_settings.cache_clear()


def test_when_stripe_cannot_be_reached_the_address_is_not_saved(session, stripe_unreachable):
    actor, account = owner_and_account(session)
    with pytest.raises(gateway.PaymentProviderError):
        billing_details.save_address(session, actor, BERLIN)
    session.rollback()
    assert billing_settings(session, account.id).invoice_address1 == ""


def test_the_billing_email_is_checked_and_normalized(session):
    actor, account = owner_and_account(session)
    assert billing_details.save_billing_email(session, actor, "  AP@Acme.EXAMPLE ") == "AP@acme.example"
    for bad, message in (
        ("", "Enter an email address."),
        ("not-an-email", "Enter a valid email address: An email address must have an @-sign."),
        ("ap@acme", "Enter a valid email address: The part after the @-sign is not valid. It should have a period."),
    ):
        with pytest.raises(ValidationFailed) as refused:
            billing_details.save_billing_email(session, actor, bad)
        assert (refused.value.field, refused.value.message) == ("email", message)
    session.commit()
    assert billing_details.billing_email(session, actor) == "AP@acme.example"


def test_a_member_cannot_change_the_billing_email(session):
    _, account = owner_and_account(session)
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    with pytest.raises(PermissionDenied):
        billing_details.save_billing_email(session, member, "ap@acme.example")
