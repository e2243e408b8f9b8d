"""Settings, read once from the environment. The only place that reads os.environ."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEMO_PASSWORD = "ledgerdesk-demo"
# Seeded only into an empty database, like the demo password; printed by the run command.
DEFAULT_DEMO_API_KEY = "ld_demo_northwind_3f9c2a7b5e1d4c8a9b6f0e2d7c1a5b3e"
# The demo operator API key, seeded and printed alike.
DEFAULT_DEMO_OPERATOR_API_KEY = "ldop_demo_operator_8d2e4f6a1c3b5d7e9f0a2b4c6d8e0f1a"
# The webhook signing secret registered with localstripe; production needs the endpoint's own.
DEMO_WEBHOOK_SECRET = "whsec_localstripe_demo"


class ConfigError(Exception):
    """A setting is missing or malformed; start-up stops with one line."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


DUNNING_FINAL_ACTIONS = ("downgrade", "none")
LOG_FORMATS = ("text", "json")


def _days(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """A comma-separated list of whole days, increasing: "1,3,5"."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        days = tuple(int(part) for part in raw.split(","))
    except ValueError as exc:
        raise ConfigError(f"{name} must be whole days separated by commas, such as 1,3,5; got {raw!r}") from exc
    if any(day < 1 for day in days) or list(days) != sorted(set(days)):
        raise ConfigError(f"{name} must be increasing whole days from 1, such as 1,3,5; got {raw!r}")
    return days


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(name: str, default: str) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses or CIDR ranges: "127.0.0.1/32,10.0.0.0/8"."""
    raw = os.environ.get(name) or default
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be addresses or ranges separated by commas, such as 10.0.0.0/8; {exc}") from exc


@dataclass(frozen=True)
class Settings:
    database_url: str
    app_port: int
    public_url: str
    stripe_secret_key: str
    stripe_publishable_key: str
    stripe_webhook_secret: str
    stripe_api_base: str
    stripe_js_url: str
    localstripe_port: int
    smtp_url: str
    mail_from: str
    redis_url: str
    demo_password: str
    demo_api_key: str
    demo_operator_api_key: str
    auto_recharge_retry_minutes: int
    password_hash_rounds: int
    password_hash_memory_kib: int
    session_ttl_hours: int
    sign_in_max_failures: int
    sign_in_lockout_minutes: int
    run_jobs_in_app: bool
    production: bool
    data_dir: Path = field(default=PROJECT_ROOT / ".data")
    web_workers: int = 1
    job_workers: int = 0
    # PostgreSQL connections per process: the app's engine, and the metering API's asyncpg pool.
    database_pool_size: int = 10
    metering_pool_size: int = 32
    # A streaming replica of the PostgreSQL database that the reporting pages read (empty: none).
    database_replica_url: str = ""
    # Failed sign-ins from one address (any emails) before it is refused for the lockout window.
    sign_in_max_failures_per_ip: int = 30
    # Webhook targets on loopback, private or link-local addresses: refused in production.
    allow_private_webhook_urls: bool = True
    # Anyone may create an account at /sign-up.
    signup_enabled: bool = True
    # Dunning: a renewal whose off-session charge fails is charged again this many days after the
    # first failure; after the last failure the final action runs (downgrade: to Basic).
    dunning_retry_days: tuple[int, ...] = (1, 3, 5)
    dunning_final_action: str = "downgrade"
    # text: one readable line per record; json: one JSON object per line, for a log collector.
    log_format: str = "text"
    # Who may scrape /metrics: loopback unless the operator names Prometheus's addresses.
    metrics_allowed_ips: tuple[IPNetwork, ...] = field(
        default=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    )
    # Set by `app.cli serve` for its children: where every process writes its metrics.
    metrics_dir: str = ""

    @property
    def uses_localstripe(self) -> bool:
        return self.stripe_api_base != ""

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """The origins whose pages may call the backend with credentials and open its websocket:
        PUBLIC_URL's own; outside production a loopback console also as localhost and 127.0.0.1,
        whichever a developer typed."""
        parts = urlsplit(self.public_url)
        # As a browser writes its Origin header: lower case, no default port.
        port = "" if parts.port in (None, {"http": 80, "https": 443}.get(parts.scheme)) else f":{parts.port}"
        host = parts.netloc.rpartition("@")[2].lower().removesuffix(f":{parts.port}" if parts.port else "")
        hosts = [host]
        if not self.production and host in ("localhost", "127.0.0.1"):
            hosts = ["localhost", "127.0.0.1"]
        return tuple(f"{parts.scheme}://{name}{port}" for name in hosts)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_replica(self) -> bool:
        """A SQLite console has no replica: DATABASE_REPLICA_URL counts only with PostgreSQL."""
        return self.database_replica_url != "" and not self.is_sqlite


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("LEDGERDESK_DATA_DIR", PROJECT_ROOT / ".data"))
    app_port = _int("APP_PORT", 3000)
    localstripe_port = _int("LOCALSTRIPE_PORT", 8420)
    secret_key = os.environ.get("STRIPE_SECRET_KEY", "")
    # Without a real key, the console talks to localstripe on loopback.
    stripe_api_base = os.environ.get("STRIPE_API_BASE", "" if secret_key else f"http://localhost:{localstripe_port}")
    default_js = (
        f"http://localhost:{localstripe_port}/js.stripe.com/v3/" if stripe_api_base else "https://js.stripe.com/v3/"
    )
    production = _bool(os.environ.get("LEDGERDESK_PRODUCTION"), False)
    return Settings(
        database_url=os.environ.get("DATABASE_URL", f"sqlite:///{data_dir / 'ledgerdesk.db'}"),
        app_port=app_port,
        public_url=os.environ.get("PUBLIC_URL", f"http://localhost:{app_port}").rstrip("/"),
        stripe_secret_key=secret_key or "sk_test_localstripe",
        stripe_publishable_key=os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe"),
        stripe_webhook_secret=os.environ.get("STRIPE_WEBHOOK_SECRET", "") or DEMO_WEBHOOK_SECRET,
        stripe_api_base=stripe_api_base,
        stripe_js_url=os.environ.get("STRIPE_JS_URL", default_js),
        localstripe_port=localstripe_port,
        smtp_url=os.environ.get("SMTP_URL", ""),
        mail_from=os.environ.get("MAIL_FROM", "Ledgerdesk <billing@ledgerdesk.local>"),
        redis_url=os.environ.get("REDIS_URL", ""),
        demo_password=os.environ.get("DEMO_PASSWORD", "") or DEFAULT_DEMO_PASSWORD,
        demo_api_key=os.environ.get("DEMO_API_KEY", "") or DEFAULT_DEMO_API_KEY,
        demo_operator_api_key=os.environ.get("DEMO_OPERATOR_API_KEY", "") or DEFAULT_DEMO_OPERATOR_API_KEY,
        auto_recharge_retry_minutes=_int("AUTO_RECHARGE_RETRY_MINUTES", 30),
        password_hash_rounds=_int("PASSWORD_HASH_ROUNDS", 3),
        password_hash_memory_kib=_int("PASSWORD_HASH_MEMORY_KIB", 65536),
        session_ttl_hours=_int("SESSION_TTL_HOURS", 24 * 14),
        sign_in_max_failures=_int("SIGN_IN_MAX_FAILURES", 5),
        sign_in_lockout_minutes=_int("SIGN_IN_LOCKOUT_MINUTES", 15),
        sign_in_max_failures_per_ip=_int("SIGN_IN_MAX_FAILURES_PER_IP", 30),
        run_jobs_in_app=_bool(os.environ.get("RUN_JOBS_IN_APP"), True),
        production=production,
        data_dir=data_dir,
        web_workers=_int("WEB_WORKERS", 1),
        job_workers=_int("JOB_WORKERS", 0),
        database_pool_size=_int("DATABASE_POOL_SIZE", 10),
        metering_pool_size=_int("METERING_POOL_SIZE", 32),
        database_replica_url=os.environ.get("DATABASE_REPLICA_URL", ""),
        allow_private_webhook_urls=_bool(os.environ.get("ALLOW_PRIVATE_WEBHOOK_URLS"), not production),
        signup_enabled=_bool(os.environ.get("SIGNUP_ENABLED"), True),
        dunning_retry_days=_days("DUNNING_RETRY_DAYS", (1, 3, 5)),
        dunning_final_action=_choice("DUNNING_FINAL_ACTION", "downgrade", DUNNING_FINAL_ACTIONS),
        log_format=_choice("LOG_FORMAT", "text", LOG_FORMATS),
        metrics_allowed_ips=_networks("METRICS_ALLOWED_IPS", "127.0.0.0/8,::1/128"),
        metrics_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
