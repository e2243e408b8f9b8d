"""Company information: logo validation and serving, owner-only rename, the company form."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api import create_api, files
from app.errors import FormInvalid, PermissionDenied, ValidationFailed
from app.models import Account, BillingSettings
from app.services import address, auth, company, storage
from tests.factories import PASSWORD, make_account, make_user
from tests.stripe_fixtures import actor_for

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x10" * 2 + b"\x08\x06\x00\x00\x00" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#3e63dd"/></svg>'


@pytest.fixture
def people(session):
    account = make_account(session, "Acme Inc")
    users = {role: make_user(session, account, f"{role}@acme.test", role) for role in ("owner", "admin", "member")}
    session.commit()
    return account, {role: actor_for(user, role) for role, user in users.items()}


def _svg(body: str, extra: str = "") -> bytes:
    namespaces = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
    return f"<svg {namespaces}{extra}>{body}</svg>".encode()


# --- Logo -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "kind"), [(PNG, "png"), (JPEG, "jpg"), (SVG, "svg")])
def test_png_jpeg_and_svg_logos_are_stored_under_the_data_dir(session, people, content, kind):
    account, actors = people
    company.save_logo(session, actors["admin"], content)
    session.commit()
    path, media_type = company.logo_file(session, actors["member"])
    assert path.read_bytes() == content
    assert path.is_relative_to(company.uploads_dir().resolve())
    assert media_type == company.LOGO_TYPES[kind]
    assert company.logo_url(session.get(Account, account.id)).startswith("/api/account/logo?v=")


def test_a_new_logo_replaces_the_old_file(session, people):
    account, actors = people
    company.save_logo(session, actors["owner"], PNG)
    first, _ = company.logo_file(session, actors["owner"])
    previous = company.save_logo(session, actors["owner"], SVG)
    session.commit()
    company.discard_file(previous)
    second, _ = company.logo_file(session, actors["owner"])
    assert second != first and not first.exists() and second.read_bytes() == SVG
    assert storage.stored_bytes(session, session.get(Account, account.id)) == len(SVG)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GIF89a" + b"\x00" * 32, "not a PNG, JPEG or SVG"),
        (b"%PDF-1.7 pretending to be logo.png", "not a PNG, JPEG or SVG"),
        (b"", "empty"),
        (PNG[:8] + b"\x00" * 64, "not a PNG, JPEG or SVG"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>", "not a valid SVG"),
        (b"<html xmlns='http://www.w3.org/1999/xhtml'></html>", "not a PNG, JPEG or SVG"),
        (b"<?xml version='1.0'?><svg><rect/></svg>", "not a valid SVG"),
    ],
)
def test_files_that_are_not_images_are_refused_by_their_content(session, people, content, message):
    account, actors = people
    with pytest.raises(ValidationFailed, match=message) as refused:
        company.save_logo(session, actors["owner"], content)
    assert refused.value.field == "logo"
    assert session.get(Account, account.id).logo_path == ""


def test_a_logo_over_one_megabyte_is_refused(session, people):
    account, actors = people
    with pytest.raises(ValidationFailed, match="larger than 1 MB"):
        company.save_logo(session, actors["owner"], PNG + b"\x00" * company.LOGO_MAX_BYTES)
    company.save_logo(session, actors["owner"], PNG + b"\x00" * (company.LOGO_MAX_BYTES - len(PNG)))


@pytest.mark.parametrize(
    "unsafe",
    [
        _svg("<script>alert(document.cookie)</script>"),
        _svg("<rect width='1' height='1'/>", ' onload="alert(1)"'),
        _svg("<a href='javascript:alert(1)'><rect width='1' height='1'/></a>"),
        _svg("<a xlink:href=' java\tscript:alert(1)'><rect width='1' height='1'/></a>"),
        _svg("<image href='https://tracker.example/pixel.png' width='1' height='1'/>"),
        _svg("<use href='data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=#x'/>"),
        _svg("<foreignObject><div xmlns='http://www.w3.org/1999/xhtml'>hi</div></foreignObject>"),
        _svg("<html:script xmlns:html='http://www.w3.org/1999/xhtml'>alert(1)</html:script>"),
        _svg("<style>@import url(https://evil.example/x.css);</style>"),
        _svg("<rect style=\"fill: url('https://evil.example/p.svg#g')\" width='1' height='1'/>"),
        _svg("<set attributeName='href' to='javascript:alert(1)'/>"),
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "boom">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
        b'<?xml-stylesheet href="https://evil.example/x.xsl"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    ],
)
def test_svgs_that_could_run_script_or_load_files_are_refused(session, people, unsafe):
    _, actors = people
    with pytest.raises(ValidationFailed, match="scripts, event handlers or links"):
        company.save_logo(session, actors["owner"], unsafe)


def test_svgs_with_internal_references_and_embedded_rasters_are_accepted(session, people):
    _, actors = people
    logo = _svg(
        "<defs><linearGradient id='g'><stop offset='0' stop-color='#fff'/></linearGradient></defs>"
        "<rect fill='url(#g)' width='10' height='10' style='fill: url(#g)'/><use href='#g'/>"
        "<image href='data:image/png;base64,iVBORw0KGgo=' width='1' height='1'/>"
        "<metadata><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/></metadata>"
    )
    company.save_logo(session, actors["owner"], logo)


def test_only_company_editors_change_the_logo(session, people):
    account, actors = people
    with pytest.raises(PermissionDenied):
        company.save_logo(session, actors["member"], PNG)
    with pytest.raises(PermissionDenied):
        company.remove_logo(session, actors["member"])
    company.save_logo(session, actors["admin"], PNG)
    previous = company.remove_logo(session, actors["admin"])
    assert previous.startswith("logos/") and session.get(Account, account.id).logo_path == ""


@pytest.fixture
def client(engine):
    api = create_api()
    api.dependency_overrides[files.files_engine] = lambda: engine
    with TestClient(api) as client:
        yield client


def _cookie(session, email: str) -> dict[str, str]:
    outcome = auth.sign_in(session, email, PASSWORD)
    token = auth.start_session(session, outcome.handoff_code, binding=outcome.binding)
    session.commit()
    return {auth.SESSION_COOKIE: token}


def test_the_logo_is_served_to_signed_in_users_of_its_account_only(session, people, client):
    _, actors = people
    company.save_logo(session, actors["owner"], SVG)
    session.commit()
    assert client.get("/api/account/logo").status_code == 401

    client.cookies.update(_cookie(session, "member@acme.test"))
    response = client.get("/api/account/logo")
    assert response.status_code == 200 and response.content == SVG
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"

    other = make_account(session, "Other Co")
    make_user(session, other, "owner@other.test")
    session.commit()
    client.cookies.clear()
    client.cookies.update(_cookie(session, "owner@other.test"))
    assert client.get("/api/account/logo").status_code == 404


# --- Name -----------------------------------------------------------------------------------


def test_only_an_owner_renames_the_account(session, people):
    account, actors = people
    for role in ("admin", "member"):
        with pytest.raises(PermissionDenied):
            company.rename_account(session, actors[role], "Hijacked")
    assert company.rename_account(session, actors["owner"], "  Acme   Holdings ").name == "Acme Holdings"
    session.commit()
    assert session.get(Account, account.id).name == "Acme Holdings"
    details = company.company_details(session, actors["admin"])
    assert details.name == "Acme Holdings" and details.can_edit and not details.can_rename


def test_an_empty_or_long_name_is_refused(session, people):
    account, actors = people
    with pytest.raises(ValidationFailed, match="Enter the account name") as refused:
        company.rename_account(session, actors["owner"], "   ")
    assert refused.value.field == "name"
    with pytest.raises(ValidationFailed, match="at most 200"):
        company.rename_account(session, actors["owner"], "x" * 201)
    assert session.get(Account, account.id).name == "Acme Inc"


# --- Company form ---------------------------------------------------------------------------

ADDRESS = company.Address(line1="1 Main St", city="Berlin", postal_code="10115", country="DE")


def _update(session, actor, **changes):
    values = {"domain": "acme.test", "timezone": "Europe/Berlin", "language": "de", "address": ADDRESS, **changes}
    return company.update_company(session, actor, **values)


def test_the_company_form_saves_domain_timezone_language_and_address(session, people):
    account, actors = people
    _update(session, actors["admin"], domain="  Acme.TEST. ", timezone="America/New_York", language="pt_BR")
    session.commit()
    saved = session.get(Account, account.id)
    assert (saved.domain, saved.timezone, saved.language) == ("acme.test", "America/New_York", "pt_BR")
    settings = session.get(BillingSettings, account.id)
    assert (settings.invoice_address1, settings.invoice_city, settings.invoice_country) == ("1 Main St", "Berlin", "DE")
    details = company.company_details(session, actors["admin"])
    assert details.address.lines() == ["1 Main St", "10115 Berlin", "Germany"]
    assert company.account_timezone(session, actors["member"]) == "America/New_York"


def test_every_bad_field_is_reported_and_nothing_changes(session, people):
    account, actors = people
    with pytest.raises(FormInvalid) as refused:
        _update(
            session,
            actors["owner"],
            domain="https://acme.test/home",
            timezone="Mars/Olympus_Mons",
            language="klingon",
            address=company.Address(line1="1 Main St", country="XX"),
        )
    assert set(refused.value.errors) == {"domain", "timezone", "language", "address_country", "address_city"}
    assert "no http://" in refused.value.errors["domain"]
    saved = session.get(Account, account.id)
    assert (saved.domain, saved.timezone, saved.language) == ("", "UTC", "en")


@pytest.mark.parametrize(
    "domain", ["localhost", "acme", "acme..test", "-acme.test", "10.0.0.1", "me@acme.test", "a_b.test"]
)
def test_malformed_domains_are_refused(session, people, domain):
    _, actors = people
    with pytest.raises(FormInvalid) as refused:
        _update(session, actors["owner"], domain=domain)
    assert set(refused.value.errors) == {"domain"}


def test_the_address_follows_the_invoice_address_rules_for_postal_code_and_region(session, people):
    account, actors = people
    address = company.Address(line1="1 Main St", city="Springfield", postal_code="ABC", region="Atlantis", country="US")
    with pytest.raises(FormInvalid) as refused:
        _update(session, actors["owner"], address=address)
    assert set(refused.value.errors) == {"address_postal_code", "address_region"}
    assert (
        session.get(BillingSettings, account.id) is None or session.get(BillingSettings, account.id).invoice_city == ""
    )


def test_an_empty_domain_and_address_clear_them(session, people):
    account, actors = people
    _update(session, actors["owner"])
    _update(session, actors["owner"], domain="", address=company.Address())
    assert session.get(Account, account.id).domain == ""
    assert company.company_details(session, actors["owner"]).address.lines() == []


def test_members_can_neither_see_nor_edit_company_information(session, people):
    _, actors = people
    with pytest.raises(PermissionDenied):
        company.company_details(session, actors["member"])
    with pytest.raises(PermissionDenied):
        _update(session, actors["member"])


def test_choices_come_from_the_real_lists():
    from zoneinfo import available_timezones

    from babel.localedata import locale_identifiers

    assert set(company.timezone_options()) <= available_timezones()
    assert {"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"} <= set(company.timezone_options())
    assert {code for code, _ in company.language_options()} <= set(locale_identifiers())
    assert dict(company.language_options())["de"] == "Deutsch — German"
    countries = dict(address.country_options())
    assert countries["DE"] == "Germany" and "EU" not in countries and "001" not in countries
