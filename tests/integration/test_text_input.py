"""SQL and HTML typed into the console's text fields are stored as the text they are: bound as
parameters, never spliced into SQL, and read back unchanged (pages render them as text, which the
e2e tests see). Each runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlmodel import select

from app.errors import ValidationFailed
from app.models import Account, ApiKey, Role, User
from app.services import api_keys, company, roles, team
from app.services.company import Address
from app.services.overview import billing_settings

HOSTILE = [
    "Robert'); DROP TABLE account; --",
    "x' OR '1'='1",
    '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "{{7*7}} ${7*7} %s %(name)s",
]


def _tables_intact(session) -> None:
    names = set(inspect(session.connection()).get_table_names())
    assert {"account", "ledger_entry", "user", "api_key", "role"} <= names


@pytest.mark.parametrize("text", HOSTILE)
def test_account_name_and_company_address(session, owner, text):
    actor, account = owner
    company.rename_account(session, actor, text)
    company.update_company(
        session,
        actor,
        domain="",
        timezone="UTC",
        language="en",
        address=Address(line1=text, line2=text, city=text[:60], postal_code="10115", region="", country="DE"),
    )
    session.commit()
    session.expire_all()
    assert session.get(Account, account.id).name == text
    settings = billing_settings(session, account.id)
    assert (settings.invoice_address1, settings.invoice_address2) == (text, text)
    _tables_intact(session)


@pytest.mark.parametrize("text", HOSTILE)
def test_api_key_role_and_invited_member_names(session, owner, text):
    actor, account = owner
    api_keys.create_key(session, actor, text[:60])
    role = roles.create_role(session, actor, name=text[:40], permissions=["info.view"])
    team.invite(session, actor, email="new@example.com", full_name=text, role_id=role.id, base_url="http://localhost")
    session.commit()
    session.expire_all()
    assert session.exec(select(ApiKey.name).where(ApiKey.account_id == account.id)).one() == text[:60]
    assert session.get(Role, role.id).name == text[:40]
    assert session.exec(select(User.full_name).where(User.email == "new@example.com")).one() == text
    _tables_intact(session)


def test_a_nul_character_in_any_text_field_is_refused_and_nothing_is_written(session, owner):
    actor, account = owner
    with pytest.raises(ValidationFailed, match="cannot contain NUL"):
        company.rename_account(session, actor, "Acme\x00 Inc")
    session.rollback()
    with pytest.raises(ValidationFailed, match="cannot contain NUL"):
        roles.create_role(session, actor, name="Ops\x00", permissions=["info.view"])
    session.rollback()
    session.expire_all()
    assert session.get(Account, account.id).name == "Acme Inc"
    assert session.exec(select(Role).where(Role.name.startswith("Ops"))).all() == []
