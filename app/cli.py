"""The run command: check the configuration, migrate, seed, start localstripe when no Stripe key
is set, serve the app.

    python -m app.cli serve                                what `make run` does
    python -m app.cli serve --workers 4 --job-workers 2    production: several backend workers
                                                           (REDIS_URL), background jobs in their own processes
    python -m app.cli migrate    apply migrations only
    python -m app.cli seed       seed demo data into an empty database (never in production)
    python -m app.cli create-owner --account NAME --email EMAIL
                                 a new account and its owner: prints the owner's invitation link
                                 (how production, which has no demo data, gets its first user)
    python -m app.cli create-operator EMAIL
                                 a member of the operator's staff (the back office at /operator):
                                 prints their invitation link
    python -m app.cli backup PATH  one file holding a consistent copy of the SQLite database, taken
                                   while it serves, and the uploaded files
    python -m app.cli restore PATH [--force]
                                 put a backup in place (refused over a database holding data or in use)
    python -m app.cli retire-demo  block the users that still have the demo password and delete
                                   the demo API key (production refuses to start until then)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from app.config import DEMO_WEBHOOK_SECRET, PROJECT_ROOT, ConfigError, Settings, get_settings
from app.errors import DomainError
from app.logs import configure_logging

TOOLS_BIN = PROJECT_ROOT / ".tools" / "npm-global" / "bin"
QUIET_REFLEX_ENV = {
    "REFLEX_TELEMETRY_ENABLED": "false",
    "REFLEX_CHECK_LATEST_VERSION": "false",
    "NPM_CONFIG_REGISTRY": "https://registry.npmjs.org",
    "REFLEX_HTTP_CLIENT_BIND_ADDRESS": "0.0.0.0",
}


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: v for k, v in QUIET_REFLEX_ENV.items() if k not in env})
    env["PATH"] = f"{TOOLS_BIN}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cache = PROJECT_ROOT / ".tools" / "cache"
    env.setdefault("BUN_INSTALL_CACHE_DIR", str(cache / "bun"))
    env.setdefault("npm_config_cache", str(cache / "npm"))
    env.setdefault("XDG_CACHE_HOME", str(cache / "xdg"))
    env.setdefault("REFLEX_DIR", str(PROJECT_ROOT / ".tools" / "reflex"))
    return env


def check_configuration(settings: Settings, web_workers: int, job_workers: int = 0) -> None:
    """Stop before anything starts when the configuration cannot work (ConfigError: one line)."""
    if web_workers < 1:
        raise ConfigError("--workers must be 1 or more")
    if settings.production and settings.uses_localstripe:
        raise ConfigError(
            "LEDGERDESK_PRODUCTION is on but STRIPE_SECRET_KEY is not set: production needs a real Stripe key"
        )
    if settings.production and settings.stripe_webhook_secret == DEMO_WEBHOOK_SECRET:
        raise ConfigError(
            "LEDGERDESK_PRODUCTION is on but STRIPE_WEBHOOK_SECRET is not set: use your endpoint's whsec_ secret"
        )
    if not settings.uses_localstripe and settings.stripe_webhook_secret == DEMO_WEBHOOK_SECRET:
        raise ConfigError(
            "STRIPE_SECRET_KEY is a real Stripe key but STRIPE_WEBHOOK_SECRET is the published demo secret: "
            "use your endpoint's whsec_ secret"
        )
    if settings.production and not settings.public_url.startswith("https://"):
        raise ConfigError(
            f"LEDGERDESK_PRODUCTION is on but PUBLIC_URL is {settings.public_url}: production needs an https:// "
            "address (the session cookie is sent only over HTTPS)"
        )
    if web_workers > 1 and not settings.redis_url:
        raise ConfigError(f"--workers {web_workers} needs REDIS_URL: the workers share their page state in Redis")
    if not settings.is_sqlite:
        _check_database(settings, web_workers, job_workers)
    if settings.redis_url:
        _check_redis(settings.redis_url)


def _check_database(settings: Settings, web_workers: int, job_workers: int) -> None:
    """Reachable, and with room for every process's pools: past max_connections PostgreSQL
    refuses connections under load ("too many clients"), which only shows when it hurts."""
    allowed = _allowed_connections(settings.database_url, "DATABASE_URL", "the database")
    per_worker = settings.database_pool_size + settings.metering_pool_size
    jobs = max(job_workers, 1) if web_workers > 1 or job_workers > 0 else 0
    needed = web_workers * per_worker + jobs * settings.database_pool_size
    if needed > allowed:
        raise ConfigError(
            f"{web_workers} worker(s) and {jobs} job worker(s) may open {needed} PostgreSQL connections "
            f"({settings.database_pool_size} + {settings.metering_pool_size} per worker, "
            f"{settings.database_pool_size} per job worker) but the server allows {allowed}: lower "
            "DATABASE_POOL_SIZE or METERING_POOL_SIZE, or raise max_connections"
        )
    if settings.uses_replica:
        _check_replica(settings, web_workers)


def _check_replica(settings: Settings, web_workers: int) -> None:
    """The replica's own max_connections holds its pool: one of DATABASE_POOL_SIZE per web worker
    (only the reporting pages read it). A replica that does not answer is no reason not to start:
    the pages read the primary until it does."""
    try:
        allowed = _allowed_connections(settings.database_replica_url, "DATABASE_REPLICA_URL", "the read replica")
    except _Unreachable as exc:
        print(f"Warning: {exc}; the reporting pages read the primary until it answers", file=sys.stderr)
        return
    needed = web_workers * settings.database_pool_size
    if needed > allowed:
        raise ConfigError(
            f"{web_workers} worker(s) may open {needed} connections to the read replica "
            f"({settings.database_pool_size} per worker) but it allows {allowed}: lower DATABASE_POOL_SIZE, "
            "or raise the replica's max_connections"
        )


class _Unreachable(ConfigError):
    """The server named by a well-formed URL does not answer."""


def _allowed_connections(url: str, setting: str, what: str) -> int:
    """The connections a PostgreSQL server gives clients that are not superusers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception as exc:
        raise ConfigError(f"{setting} is not a database URL: {exc}") from None
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    try:
        engine = create_engine(url, connect_args=connect_args)
        with engine.connect() as connection:
            allowed: int = connection.execute(
                text(
                    "select current_setting('max_connections')::int"
                    " - current_setting('superuser_reserved_connections')::int"
                )
            ).scalar_one()
        engine.dispose()
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise _Unreachable(f"cannot reach {what} at {shown}: {reason}") from None
    return allowed


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except Exception as exc:
        shown = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
        raise ConfigError(f"cannot reach Redis at {shown}: {exc}") from None


def migrate() -> None:
    from app.migrations import upgrade_to_head

    upgrade_to_head()


def seed() -> bool:
    from app.db import transaction
    from app.seed import seed_demo

    if get_settings().production:
        raise ConfigError("LEDGERDESK_PRODUCTION is on: demo data is never seeded in production")
    with transaction() as session:
        return seed_demo(session)


def check_no_demo_credentials() -> None:
    """Production stops while anyone could sign in or call the API with the published demo
    credentials (a database seeded before, or copied from a demo)."""
    from app.db import transaction
    from app.seed import demo_leftovers

    with transaction() as session:
        reason = demo_leftovers(session)
    if reason:
        raise ConfigError(
            f"LEDGERDESK_PRODUCTION is on but {reason}: run `python -m app.cli retire-demo` "
            "(blocks the demo users, deletes the demo API key)"
        )


def create_owner(account_name: str, email: str) -> str:
    """A new account whose one user, its Owner, is invited; the invitation link (valid 7 days)."""
    from app.db import transaction
    from app.services.accounts import builtin_role, create_account, create_user, ensure_builtin_roles
    from app.services.auth import issue_invitation

    with transaction() as session:
        ensure_builtin_roles(session)
        account = create_account(session, name=account_name)
        owner = create_user(
            session,
            account=account,
            email=email,
            full_name="",
            role=builtin_role(session, "owner"),
            password=None,
            status="invited",
        )
        return issue_invitation(session, owner, base_url=get_settings().public_url)


def create_operator(email: str) -> str:
    """A new member of the operator's staff, invited; the invitation link (valid 7 days)."""
    from app.db import transaction
    from app.services.operator import staff

    with transaction() as session:
        _user, link = staff.create_operator(session, email, base_url=get_settings().public_url)
        return link


def retire_demo() -> list[str]:
    from app.db import transaction
    from app.seed import retire_demo as retire

    with transaction() as session:
        return retire(session)


def schedule_recurring_jobs() -> None:
    """The monthly period close, the reconciliation sweep, the credit grants' upkeep, the pruning
    of expired sign-ups and the usage rollup's sweep reschedule themselves; this starts each chain
    (safe every start)."""
    from app.db import transaction
    from app.services import usage
    from app.services.grants import schedule_upkeep
    from app.services.invoices import schedule_period_close
    from app.services.reconciliation import schedule_sweep
    from app.services.signup import schedule_pruning

    with transaction() as session:
        schedule_period_close(session)
        schedule_sweep(session)
        schedule_upkeep(session)
        schedule_pruning(session)
        usage.schedule_sweep(session)


def _wait_for(url: str, timeout: float, process: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def _port_taken(host: str, port: int) -> bool:
    """Whether a server here could not listen on `port` (binding as localstripe and granian do)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports_free(settings: Settings) -> None:
    """Another program on our ports stops start-up: on localstripe's, the console would otherwise
    use that other copy (its customers, and our webhook registered with it)."""
    if settings.uses_localstripe and not settings.production and _port_taken("::", settings.localstripe_port):
        raise ConfigError(
            f"localstripe's port {settings.localstripe_port} is taken (another Ledgerdesk running?): "
            "stop that program or set LOCALSTRIPE_PORT"
        )
    host = os.environ.get("APP_HOST", "0.0.0.0")
    if _port_taken(host, settings.app_port):
        raise ConfigError(
            f"the console's port {settings.app_port} is taken (another Ledgerdesk running?): "
            "stop that program or set APP_PORT"
        )


def start_localstripe() -> subprocess.Popen:
    """localstripe on its own port, its output in the data directory's localstripe.log."""
    settings = get_settings()
    state_file = settings.data_dir / "localstripe.pickle"
    log_file = settings.data_dir / "localstripe.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(PROJECT_ROOT / "scripts" / "localstripe_server.py"),
                "--port",
                str(settings.localstripe_port),
                "--state-file",
                str(state_file),
            ],
            env=_child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if not _wait_for(f"{settings.stripe_api_base}/v1/customers", 30, process):
        process.kill()
        raise ConfigError(f"localstripe did not start on port {settings.localstripe_port}: see {log_file}")
    from app.payments.localstripe import register_webhook

    register_webhook(
        settings.stripe_api_base, f"{settings.public_url}/api/webhooks/stripe", settings.stripe_webhook_secret
    )
    return process


def metrics_env(data_dir: Path) -> dict[str, str]:
    """prometheus_client's multiprocess directory, emptied: every process started with this
    environment writes its metrics there and /metrics, in any web worker, adds them all up. The
    files of a previous run's processes would otherwise count again."""
    directory = data_dir / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(directory)}


def serve(web_workers: int = 1, job_workers: int = 0) -> int:
    """Migrations first, then the app. With more than one web worker, or any job workers, the
    background jobs run in `job_workers` processes of their own (at least one) rather than in the
    web workers."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    check_configuration(settings, web_workers, job_workers)
    check_ports_free(settings)
    migrate()
    children: list[subprocess.Popen] = []
    jobs_apart = web_workers > 1 or job_workers > 0
    if settings.production:
        check_no_demo_credentials()
        seeded = False
    else:
        if settings.uses_localstripe:
            # Before seeding: the demo card is saved through Stripe.
            children.append(start_localstripe())
        seeded = seed()
    schedule_recurring_jobs()
    started = datetime.now(UTC)
    web_dir = os.environ.get("REFLEX_WEB_WORKDIR", ".web")
    metrics = metrics_env(settings.data_dir)
    app_env = {**_child_env(), **metrics, "REFLEX_WEB_WORKDIR": web_dir, "GRANIAN_WORKERS": str(web_workers)}
    if jobs_apart:
        app_env["RUN_JOBS_IN_APP"] = "false"
        for _ in range(max(job_workers, 1)):
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "app.jobs.worker"], cwd=PROJECT_ROOT, env={**_child_env(), **metrics}
                )
            )
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reflex",
            "run",
            "--env",
            "prod",
            # Reflex's own notes (its address, "Run `reflex run`") would come after or contradict the banner.
            "--loglevel",
            "warning",
            "--single-port",
            "--frontend-port",
            str(settings.app_port),
            "--backend-port",
            str(settings.app_port),
            "--backend-host",
            os.environ.get("APP_HOST", "0.0.0.0"),
        ],
        cwd=PROJECT_ROOT,
        env=app_env,
    )
    children.append(app)

    def stop(*_args) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()

    def stop_and_exit(*_args) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop_and_exit)
    try:
        if not _wait_for(f"http://127.0.0.1:{settings.app_port}/api/health", 300, app):
            print("Ledgerdesk did not start; see the output above.", file=sys.stderr)
            stop()
            return 1
        _wait_for_start_jobs(started)
        _print_banner(seeded)
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


def _wait_for_start_jobs(started: datetime, timeout: float = 30) -> None:
    """Wait (at most `timeout` seconds) for the jobs that were due when the console started, such
    as the emails of the seeded invoices, whose text goes to the log: their lines come before the
    banner, which stays the last thing `make run` prints."""
    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from app.db import get_engine
    from app.models import Job

    due = select(func.count()).select_from(Job).where(col(Job.status) == "pending", col(Job.run_at) <= started)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(get_engine()) as session:
            if not session.exec(due).one():
                return
        time.sleep(0.3)


def _print_banner(seeded: bool) -> None:
    settings = get_settings()
    if settings.production:
        print(f"\n  Ledgerdesk is running at {settings.public_url}\n", flush=True)
        return
    lines = [
        "",
        f"  Ledgerdesk is running at {settings.public_url}",
        "  Sign in as owner@example.com, admin@example.com or member@example.com",
        f"  Password: {'the value of DEMO_PASSWORD' if os.environ.get('DEMO_PASSWORD') else settings.demo_password}",
    ]
    if settings.uses_localstripe:
        lines.append(f"  Stripe: localstripe at {settings.stripe_api_base} (test card 4242 4242 4242 4242)")
    lines.append(
        f"  Demo API key: {'the value of DEMO_API_KEY' if os.environ.get('DEMO_API_KEY') else settings.demo_api_key}"
    )
    lines.append(f"  Operator back office: {settings.public_url}/operator as operator@example.com, same password")
    operator_key = (
        "the value of DEMO_OPERATOR_API_KEY"
        if os.environ.get("DEMO_OPERATOR_API_KEY")
        else settings.demo_operator_api_key
    )
    lines.append(f"  Demo operator API key: {operator_key}")
    if seeded:
        lines.append("  Demo data was seeded into the empty database.")
    print("\n".join(lines) + "\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli")
    parser.add_argument(
        "command",
        choices=["serve", "migrate", "seed", "retire-demo", "create-owner", "create-operator", "backup", "restore"],
    )
    parser.add_argument(
        "target", nargs="?", default="", help="create-operator: the operator's email; backup, restore: the file"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="backup: replace the file; restore: replace a database that holds data and uploaded files",
    )
    parser.add_argument("--account", default="", help="create-owner: the new account's name")
    parser.add_argument("--email", default="", help="create-owner: the owner's email")
    parser.add_argument("--workers", type=int, help="backend worker processes (more than one needs REDIS_URL)")
    parser.add_argument(
        "--job-workers", type=int, help="background job processes; 0 runs jobs inside a single web worker"
    )
    args = parser.parse_args(argv)
    try:
        configure_logging()
        if args.command == "migrate":
            migrate()
        elif args.command == "seed":
            print("seeded" if seed() else "database not empty: nothing seeded")
        elif args.command == "create-owner":
            if not args.email.strip():
                raise ConfigError("create-owner needs --email")
            print(f"Invitation for the owner (valid 7 days): {create_owner(args.account, args.email)}")
        elif args.command == "create-operator":
            if not args.target.strip():
                raise ConfigError("create-operator needs the operator's EMAIL")
            print(f"Invitation for the operator (valid 7 days): {create_operator(args.target)}")
        elif args.command in ("backup", "restore"):
            from app import backup
            from app.services.storage import uploads_dir

            if not args.target.strip():
                raise ConfigError(f"{args.command} needs the backup file's PATH")
            path = Path(args.target)
            database_url, uploads = get_settings().database_url, uploads_dir()
            if args.command == "backup":
                size = backup.backup(database_url, uploads, path, force=args.force)
                print(f"Backed up the database and {uploads} to {path} ({size:,} bytes)")
            else:
                if backup.restore(path, database_url, uploads, force=args.force):
                    print(f"Restored the database and {uploads} from {path}")
                else:
                    print(
                        f"Restored the database from {path}, a backup of the database only: {uploads} "
                        "was left as it was"
                    )
                print("`python -m app.cli serve` migrates the database to this version on start")
        elif args.command == "retire-demo":
            print("\n".join(retire_demo()) or "no demo credentials left")
        else:
            settings = get_settings()
            return serve(
                settings.web_workers if args.workers is None else args.workers,
                settings.job_workers if args.job_workers is None else args.job_workers,
            )
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
