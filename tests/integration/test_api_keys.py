"""API keys: shown once, stored only as a SHA-256, found by that hash and compared in constant
time, refused from the call after their deletion, last use recorded at most once a minute."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Session, select

from app.config import DEFAULT_DEMO_API_KEY, ConfigError, get_settings
from app.demo import metering as demo_metering
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import ApiKey
from app.services import api_keys, info, tokens
from app.services.api_keys import InvalidApiKey
from tests.factories import actor_for, make_user, owner_and_account

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_the_full_key_is_returned_once_and_only_its_hash_is_stored(session):
    actor, _ = owner_and_account(session)
    key, full_key = api_keys.create_key(session, actor, "  Production  ")
    session.commit()

    assert full_key.startswith("ld_") and len(full_key) >= 40
    stored = session.exec(select(ApiKey).where(ApiKey.id == key.id)).one()
    assert stored.name == "Production"
    assert stored.secret_hash == hashlib.sha256(full_key.encode()).hexdigest()
    assert full_key.startswith(stored.prefix) and len(stored.prefix) < 16
    row = {column.key: getattr(stored, column.key) for column in sa_inspect(ApiKey).columns}
    assert not any(isinstance(value, str) and full_key in value for value in row.values())
    assert not any(isinstance(value, str) and full_key[10:30] in value for value in row.values())
    assert [listed.public_id for listed in api_keys.list_keys(session, actor)] == [key.public_id]


def test_two_keys_never_share_a_secret(session):
    actor, account = owner_and_account(session)
    account.plan_code = "business"  # 200 keys
    keys = {api_keys.create_key(session, actor, f"k{i}")[1] for i in range(20)}
    assert len(keys) == 20


def test_managing_keys_needs_the_permission_and_a_name(session):
    owner, account = owner_and_account(session)
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    with pytest.raises(PermissionDenied):
        api_keys.create_key(session, member, "Mine")
    with pytest.raises(PermissionDenied):
        api_keys.list_keys(session, member)
    with pytest.raises(ValidationFailed) as blank:
        api_keys.create_key(session, owner, "   ")
    assert blank.value.field == "name"
    with pytest.raises(ValidationFailed):
        api_keys.create_key(session, owner, "x" * 101)
    key, _ = api_keys.create_key(session, owner, "Ok")
    with pytest.raises(PermissionDenied):
        api_keys.delete_key(session, member, key.public_id)


def test_the_plans_number_of_api_keys_is_enforced_where_info_shows_it(session):
    """Basic includes 2 keys: the third is refused at the name field with the limit named; a
    deleted key frees its place; Info shows the same figures."""
    actor, account = owner_and_account(session)
    first, _ = api_keys.create_key(session, actor, "One")
    api_keys.create_key(session, actor, "Two")
    with pytest.raises(ValidationFailed) as refused:
        api_keys.create_key(session, actor, "Three")
    assert refused.value.field == "name"
    assert refused.value.message.startswith("Account limit reached: your Basic plan includes 2 API keys.")
    keys = next(limit for limit in info.account_info(session, actor).limits if limit.key == "api_keys")
    assert (keys.used, keys.limit, keys.reached) == (2, 2, True)
    api_keys.delete_key(session, actor, first.public_id)
    api_keys.create_key(session, actor, "Three")
    account.plan_code = "pro"
    for n in range(18):
        api_keys.create_key(session, actor, f"Pro {n}")
    with pytest.raises(ValidationFailed, match="your Pro plan includes 20 API keys"):
        api_keys.create_key(session, actor, "One too many")


def test_authenticate_finds_the_key_by_its_hash_and_compares_in_constant_time(session, monkeypatch):
    actor, account = owner_and_account(session)
    key, full_key = api_keys.create_key(session, actor, "Prod")
    session.commit()
    compared = []
    real_compare = tokens.hmac.compare_digest

    def spy(stored, presented):
        compared.append((stored, presented))
        return real_compare(stored, presented)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    assert api_keys.authenticate(session, full_key, NOON).id == key.id
    digest = hashlib.sha256(full_key.encode()).hexdigest()
    assert compared == [(digest, digest)]

    for wrong in (
        None,
        "",
        "Bearer " + full_key,
        full_key[:-1] + ("A" if full_key[-1] != "A" else "B"),  # well-formed, unknown
        "ld_short",
        full_key + " ",
        "sk_" + full_key[3:],
    ):
        with pytest.raises(InvalidApiKey):
            api_keys.authenticate(session, wrong, NOON)


def test_a_deleted_key_is_refused_on_the_very_next_call(engine):
    with Session(engine, expire_on_commit=False) as session:
        actor, _ = owner_and_account(session)
        key, full_key = api_keys.create_key(session, actor, "Prod")
        session.commit()
        assert api_keys.authenticate(session, full_key).id == key.id
        session.commit()
    # Deleted through another session, as the API Keys page would, and checked by a fresh one,
    # as the next metering call would be: nothing remembered the key as valid.
    with Session(engine) as session:
        api_keys.delete_key(session, actor, key.public_id)
        session.commit()
    with Session(engine) as session:
        with pytest.raises(InvalidApiKey):
            api_keys.authenticate(session, full_key)
        assert api_keys.list_keys(session, actor) == []
        with pytest.raises(NotFound):
            api_keys.delete_key(session, actor, key.public_id)


def test_a_key_of_another_account_cannot_be_deleted(session):
    owner, _ = owner_and_account(session)
    other, _ = owner_and_account(session, email="other@example.com")
    key, full_key = api_keys.create_key(session, owner, "Prod")
    with pytest.raises(NotFound):
        api_keys.delete_key(session, other, key.public_id)
    assert api_keys.authenticate(session, full_key).id == key.id


def test_last_used_is_written_at_most_once_a_minute(session):
    actor, _ = owner_and_account(session)
    key, full_key = api_keys.create_key(session, actor, "Prod")
    session.commit()

    def last_used():
        session.expire_all()
        return session.get(ApiKey, key.id).last_used_at

    assert last_used() is None
    api_keys.authenticate(session, full_key, NOON)
    assert last_used() == NOON
    api_keys.authenticate(session, full_key, NOON + timedelta(seconds=59))
    assert last_used() == NOON
    api_keys.authenticate(session, full_key, NOON + timedelta(seconds=61))
    assert last_used() == NOON + timedelta(seconds=61)


def test_the_demo_key_is_stored_once_for_the_demo_account(session):
    _, account = owner_and_account(session)
    assert api_keys.well_formed(DEFAULT_DEMO_API_KEY)
    demo_metering.seed(session, account, NOON)
    demo_metering.seed(session, account, NOON)
    keys = session.exec(select(ApiKey).where(ApiKey.account_id == account.id)).all()
    assert [(k.name, k.secret_hash) for k in keys] == [("Demo key", api_keys.hash_key(DEFAULT_DEMO_API_KEY))]
    assert api_keys.authenticate(session, DEFAULT_DEMO_API_KEY).account_id == account.id


def test_a_malformed_demo_key_setting_stops_the_seed_with_a_configuration_error(session, monkeypatch):
    _, account = owner_and_account(session)
    monkeypatch.setenv("DEMO_API_KEY", "not a key")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="DEMO_API_KEY"):
            demo_metering.seed(session, account, NOON)
    finally:
        monkeypatch.delenv("DEMO_API_KEY")
        get_settings.cache_clear()
    with pytest.raises(ValidationFailed):
        api_keys.ensure_demo_key(session, account.id, "not a key")
    assert session.exec(select(ApiKey).where(ApiKey.account_id == account.id)).all() == []
