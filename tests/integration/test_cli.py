"""The run command stops on a configuration that cannot work with one line on stderr and exit
code 2, before it migrates or starts anything."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.config import PROJECT_ROOT


def _serve(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "LEDGERDESK_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", *args],
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
