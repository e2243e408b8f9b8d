"""GET /metrics: the Prometheus text format, for the addresses in METRICS_ALLOWED_IPS only (403
otherwise). Every process's counters (app/metrics.py, through the multiprocess directory when
`app.cli serve` set one), plus the job queue read from the database at scrape."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from app.config import get_settings
from app.db import get_engine
from app.jobs.queue import queue_stats
from app.models import utcnow

router = APIRouter()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A proxy in front of the console (on this host, say) would make every visitor look like loopback:
# a request that came through one is refused, so Prometheus scrapes the port directly.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def metrics_engine() -> Engine:
    """A dependency, so tests can point the job queue's figures at their database."""
    return get_engine()


class JobQueueCollector(Collector):
    def __init__(self, engine: Engine):
        self.engine = engine

    def collect(self):
        depth, oldest_age, failed = queue_stats(self.engine, utcnow())
        yield GaugeMetricFamily("ledgerdesk_job_queue_depth", "Pending jobs that are due.", value=depth)
        yield GaugeMetricFamily(
            "ledgerdesk_job_oldest_due_age_seconds", "How long the oldest due job has waited.", value=oldest_age
        )
        jobs_failed = GaugeMetricFamily(
            "ledgerdesk_jobs_failed",
            "Jobs in the table that failed for good (no attempt left), by kind.",
            labels=["kind"],
        )
        for kind, count in sorted(failed.items()):
            jobs_failed.add_metric([kind], count)
        yield jobs_failed


def allowed(client_host: str | None, headers) -> bool:
    if client_host is None or any(name in headers for name in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(client_host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in get_settings().metrics_allowed_ips)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, engine: Engine = Depends(metrics_engine)) -> Response:
    if not allowed(request.client.host if request.client else None, request.headers):
        return JSONResponse(
            {"error": {"code": "forbidden", "message": "Metrics are served only to METRICS_ALLOWED_IPS."}},
            status_code=403,
        )
    registry: CollectorRegistry = REGISTRY
    if get_settings().metrics_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    queue = CollectorRegistry()
    queue.register(JobQueueCollector(engine))
    return Response(generate_latest(registry) + generate_latest(queue), media_type=CONTENT_TYPE)
