"""Runs due jobs: inside the app process by default, or on its own with `python -m app.jobs.worker`;
writes the heartbeat /api/ready reads while it runs."""

from __future__ import annotations

import asyncio
import logging
import time

from app.config import get_settings
from app.db import get_engine
from app.jobs import handlers  # noqa: F401  registers every job handler
from app.jobs.queue import run_due_jobs
from app.logs import configure_logging
from app.services import health, live

log = logging.getLogger("ledgerdesk.jobs")
POLL_SECONDS = 1.0


async def run_worker_forever() -> None:
    engine = get_engine()
    worker = health.worker_name()
    log.info("job worker %s started", worker)
    next_beat = 0.0
    while True:
        try:
            if time.monotonic() >= next_beat:
                await asyncio.to_thread(health.beat, engine, worker)
                next_beat = time.monotonic() + health.BEAT_EVERY.total_seconds()
            ran = await asyncio.to_thread(run_due_jobs, engine)
        except Exception:  # the database may be restarting: keep polling
            log.exception("job worker poll failed")
            ran = 0
        if ran == 0:
            await asyncio.sleep(POLL_SECONDS)


async def run_alone() -> None:
    """A worker process of its own also tells the web processes what its jobs changed (through
    Redis; inside a web process, that process's live updates do)."""
    publisher = asyncio.create_task(live.run_publisher(get_settings().redis_url))
    try:
        await run_worker_forever()
    finally:
        publisher.cancel()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(run_alone())
