"""Talking to a localstripe process over HTTP (it is GPL-3.0: never imported, only run as its own
process by scripts/localstripe_server.py)."""

from __future__ import annotations

import time

import httpx


def wait_until_up(base_url: str, timeout: float = 15.0) -> None:
    """Block until localstripe answers HTTP, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{base_url}/v1/customers", params={"limit": 1}, auth=("sk_test_probe", ""), timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"localstripe did not answer at {base_url} within {timeout} s") from None
            time.sleep(0.1)


def register_webhook(base_url: str, url: str, secret: str, webhook_id: str = "ledgerdesk") -> None:
    """Make localstripe deliver its events to `url`, signed with `secret` like Stripe does."""
    response = httpx.post(f"{base_url}/_config/webhooks/{webhook_id}", data={"url": url, "secret": secret}, timeout=5.0)
    response.raise_for_status()
