"""Every Prometheus metric of the console, and one small record_* function per kind of event, so
the code that sees the event makes one call. Served at /metrics (app/api/metrics.py).

Several processes (granian's web workers, job workers) report together through prometheus_client's
multiprocess mode: `python -m app.cli serve` points PROMETHEUS_MULTIPROC_DIR at a directory under
the data directory, emptied at every start, before any process imports this module. Without it
(tests, a bare `reflex run`) the metrics live in the process's own registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "ledgerdesk_http_requests_total", "HTTP requests by route template and status.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "ledgerdesk_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
METERING_CALLS = Counter(
    "ledgerdesk_metering_calls_total",
    "POST /api/v1/usage calls by outcome: ok, replayed, the refusal's code, or error (answered 5xx).",
    ["outcome"],
)
METERING_DEBITED = Counter(
    "ledgerdesk_metering_debited_cents_total", "Usage credits debited by metering calls, in cents."
)
JOB_FAILURES = Counter(
    "ledgerdesk_job_failures_total",
    "Failed job attempts by kind (each retry counts; final: no retry left).",
    ["kind", "final"],
)
WEBHOOK_DELIVERIES = Counter(
    "ledgerdesk_webhook_delivery_attempts_total",
    "Outgoing webhook POSTs by result: delivered (2xx), http_3xx/4xx/5xx, no_response.",
    ["result"],
)
STRIPE_CALLS = Counter(
    "ledgerdesk_stripe_calls_total", "Stripe API calls by operation and outcome.", ["operation", "outcome"]
)
STRIPE_LATENCY = Histogram(
    "ledgerdesk_stripe_call_duration_seconds",
    "Stripe API call latency by operation.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
OFF_SESSION_CHARGES = Counter(
    "ledgerdesk_off_session_charges_total",
    "Auto-recharge and renewal charges by outcome (Stripe's status, or error when Stripe could not be reached).",
    ["purpose", "outcome"],
)
WEBSOCKETS = Gauge(
    "ledgerdesk_websocket_connections", "Open websocket connections (console pages).", multiprocess_mode="livesum"
)


def record_http(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def record_metering(outcome: str, debited_cents: int) -> None:
    METERING_CALLS.labels(outcome).inc()
    if debited_cents:
        METERING_DEBITED.inc(debited_cents)


def record_job_failure(kind: str, final: bool) -> None:
    JOB_FAILURES.labels(kind, "true" if final else "false").inc()


def record_webhook_attempt(status_code: int | None) -> None:
    if status_code is None:
        result = "no_response"
    elif 200 <= status_code < 300:
        result = "delivered"
    else:
        result = f"http_{status_code // 100}xx"
    WEBHOOK_DELIVERIES.labels(result).inc()


def record_stripe_call(operation: str, outcome: str, seconds: float) -> None:
    STRIPE_CALLS.labels(operation, outcome).inc()
    STRIPE_LATENCY.labels(operation).observe(seconds)


def record_off_session_charge(purpose: str, outcome: str) -> None:
    OFF_SESSION_CHARGES.labels(purpose, outcome).inc()


def websocket_opened() -> None:
    WEBSOCKETS.inc()


def websocket_closed() -> None:
    WEBSOCKETS.dec()
