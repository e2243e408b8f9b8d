"""The run command stops on a configuration that cannot work with one line on stderr and exit
code 2, before it migrates or starts anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from sqlmodel import Session, select

from app import cli
from app.config import DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_PASSWORD, PROJECT_ROOT, get_settings
from app.db import get_engine, make_engine
from app.migrations import upgrade_to_head
from app.models import Account, ApiKey, User
from app.seed import demo_leftovers
from app.services import api_keys, auth
from tests.factories import make_account, make_user, signed_in_token

PRODUCTION = {
    "LEDGERDESK_PRODUCTION": "true",
    "STRIPE_SECRET_KEY": "sk_live_x",
    "STRIPE_API_BASE": "",
    "STRIPE_WEBHOOK_SECRET": "whsec_endpoint_secret",
    "PUBLIC_URL": "https://billing.example.com",
}


def _serve(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return _cli(tmp_path, "serve", *args, **env)


def _cli(tmp_path, command: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "LEDGERDESK_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", command, *args],
        env={**clean, "LEDGERDESK_DATA_DIR": str(tmp_path), **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            (),
            {"LEDGERDESK_PRODUCTION": "true"},
            "Configuration error: LEDGERDESK_PRODUCTION is on but STRIPE_SECRET_KEY is not set: production needs a real Stripe key",
        ),
        (
            (),
            {"LEDGERDESK_PRODUCTION": "true", "STRIPE_SECRET_KEY": "sk_test_x"},
            "Configuration error: LEDGERDESK_PRODUCTION is on but STRIPE_WEBHOOK_SECRET is not set: use your endpoint's whsec_ secret",
        ),
        (
            ("--workers", "2"),
            {},
            "Configuration error: --workers 2 needs REDIS_URL: the workers share their page state in Redis",
        ),
        (
            (),
            {"DATABASE_URL": "postgresql+psycopg://ledger:s3cret@127.0.0.1:1/ledger"},
            "Configuration error: cannot reach the database at postgresql+psycopg://ledger:***@127.0.0.1:1/ledger: ",
        ),
        (
            (),
            {"REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"},
            "Configuration error: cannot reach Redis at redis://:***@127.0.0.1:1/0: ",
        ),
        ((), {"APP_PORT": "eighty"}, "Configuration error: APP_PORT must be an integer, got 'eighty'"),
        (
            (),
            {"STRIPE_SECRET_KEY": "sk_live_x"},
            "Configuration error: STRIPE_SECRET_KEY is a real Stripe key but STRIPE_WEBHOOK_SECRET is the published "
            "demo secret: use your endpoint's whsec_ secret",
        ),
        (
            (),
            {"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_localstripe_demo"},
            "Configuration error: STRIPE_SECRET_KEY is a real Stripe key but STRIPE_WEBHOOK_SECRET is the published "
            "demo secret: use your endpoint's whsec_ secret",
        ),
        (
            (),
            {**PRODUCTION, "PUBLIC_URL": "http://billing.example.com"},
            "Configuration error: LEDGERDESK_PRODUCTION is on but PUBLIC_URL is http://billing.example.com: "
            "production needs an https:// address (the session cookie is sent only over HTTPS)",
        ),
    ],
)
def test_a_configuration_that_cannot_work_stops_with_one_line(tmp_path, args, env, line):
    result = _serve(tmp_path, *args, **env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(line), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "s3cret" not in result.stderr
    # Nothing was started or migrated.
    assert not (tmp_path / "ledgerdesk.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("taken", "line"),
    [
        (
            "LOCALSTRIPE_PORT",
            "Configuration error: localstripe's port {port} is taken (another Ledgerdesk running?): stop that "
            "program or set LOCALSTRIPE_PORT",
        ),
        (
            "APP_PORT",
            "Configuration error: the console's port {port} is taken (another Ledgerdesk running?): stop that "
            "program or set APP_PORT",
        ),
    ],
)
def test_a_port_in_use_stops_start_up_with_one_line(tmp_path, taken, line):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        ports = {"APP_PORT": str(_free_port()), "LOCALSTRIPE_PORT": str(_free_port()), taken: str(port)}
        result = _serve(tmp_path, **ports)
    assert result.returncode == 2
    assert result.stderr == line.format(port=port) + "\n", result.stderr
    assert not (tmp_path / "ledgerdesk.db").exists()


def test_localstripe_writes_its_output_to_the_data_directory(tmp_path, monkeypatch):
    port = _free_port()
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)
    monkeypatch.setenv("LEDGERDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOCALSTRIPE_PORT", str(port))
    get_settings.cache_clear()
    try:
        process = cli.start_localstripe()
    finally:
        get_settings.cache_clear()
    process.terminate()
    process.wait(timeout=10)
    assert "GET /v1/customers" in (tmp_path / "localstripe.log").read_text()


def test_pools_that_would_exceed_postgresqls_connections_stop_start_up(tmp_path):
    from tests.conftest import _PG_REASON, PG_ADMIN_URL

    if _PG_REASON:
        pytest.skip(_PG_REASON)
    result = _serve(tmp_path, DATABASE_URL=PG_ADMIN_URL, METERING_POOL_SIZE="500")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "Configuration error: 1 worker(s) and 0 job worker(s) may open 510 PostgreSQL connections "
        "(10 + 500 per worker, 10 per job worker) but the server allows "
    ), result.stderr
    assert result.stderr.strip().endswith("lower DATABASE_POOL_SIZE or METERING_POOL_SIZE, or raise max_connections")


def _demo_database(tmp_path, *, key: bool = False, password: str = DEFAULT_DEMO_PASSWORD) -> str:
    """A database seeded as a demo once was: the demo owner, and the demo API key if asked."""
    url = f"sqlite:///{tmp_path / 'ledgerdesk.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    with Session(engine) as session:
        account = make_account(session, "Northwind Analytics")
        make_user(session, account, "owner@example.com", password=password)
        if key:
            assert account.id is not None
            api_keys.ensure_demo_key(session, account.id, DEFAULT_DEMO_API_KEY)
        session.commit()
    engine.dispose()
    return url


@pytest.mark.parametrize(
    ("key", "password", "reason"),
    [
        (False, DEFAULT_DEMO_PASSWORD, "owner@example.com still has the demo password"),
        (True, "a-real-secret-phrase", "the demo API key is still valid"),
    ],
)
def test_production_stops_while_demo_credentials_work_and_retire_demo_ends_them(tmp_path, key, password, reason):
    url = _demo_database(tmp_path, key=key, password=password)
    result = _serve(tmp_path, **PRODUCTION, DATABASE_URL=url)
    assert result.returncode == 2
    assert result.stderr == (
        f"Configuration error: LEDGERDESK_PRODUCTION is on but {reason}: run `python -m app.cli retire-demo` "
        "(blocks the demo users, deletes the demo API key)\n"
    )

    retired = _cli(tmp_path, "retire-demo", DATABASE_URL=url)
    assert retired.returncode == 0, retired.stderr
    engine = make_engine(url)
    with Session(engine) as session:
        assert demo_leftovers(session) == ""
        with pytest.raises(api_keys.InvalidApiKey):
            api_keys.authenticate(session, DEFAULT_DEMO_API_KEY)
        owner = session.exec(select(User)).one()
        assert owner.status == ("active" if key else "blocked")
        assert auth.sign_in(session, "owner@example.com", DEFAULT_DEMO_PASSWORD).handoff_code == ""
    engine.dispose()


def test_seeding_demo_data_is_refused_in_production(tmp_path):
    result = _cli(tmp_path, "seed", **PRODUCTION)
    assert result.returncode == 2
    assert (
        result.stderr == "Configuration error: LEDGERDESK_PRODUCTION is on: demo data is never seeded in production\n"
    )


class _Started(Exception):
    """serve reached the point where it starts the web server."""


def test_production_serve_creates_no_demo_account(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ledgerdesk.db'}"
    settings = {**PRODUCTION, "DATABASE_URL": url, "LEDGERDESK_DATA_DIR": str(tmp_path), "APP_PORT": str(_free_port())}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_engine.cache_clear()

    def started(*_args, **_kwargs):
        raise _Started

    monkeypatch.setattr(cli.subprocess, "Popen", started)
    try:
        with pytest.raises(_Started):
            cli.serve()
    finally:
        get_engine().dispose()
        monkeypatch.undo()
        get_settings.cache_clear()
        get_engine.cache_clear()
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []
        assert session.exec(select(ApiKey)).all() == []
    engine.dispose()


def test_create_owner_gives_a_new_account_its_invited_owner(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledgerdesk.db'}"
    upgrade_to_head(url)
    env = {**PRODUCTION, "DATABASE_URL": url}
    result = _cli(tmp_path, "create-owner", "--account", "Acme Inc", "--email", "Ann@Acme.example", **env)
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip().rsplit(" ", 1)[1]
    assert link.startswith("https://billing.example.com/accept-invite?token=")
    # One person may own several accounts: the second is another invitation of the same person.
    again = _cli(tmp_path, "create-owner", "--account", "Other", "--email", "ann@acme.example", **env)
    assert again.returncode == 0 and "/accept-invite?token=" in again.stdout, again.stderr
    engine = make_engine(url)
    with Session(engine) as session:
        owner = auth.accept_invitation(session, link.split("token=", 1)[1], "a-chosen-passphrase")
        session.commit()
        actor = auth.actor_for_session_token(
            session, signed_in_token(session, "ann@acme.example", "a-chosen-passphrase")
        )
        assert (actor.role_key, session.get(Account, owner.account_id).name) == ("owner", "Acme Inc")
    engine.dispose()
