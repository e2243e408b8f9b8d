"""Live updates under load: how long after a metering call's commit its effect shows in a browser
that keeps the Billing Overview open, and what pushing costs the server. In one run, against the
console started as `make run` starts it (SQLite, one worker, in a data directory of its own):

- commit-to-DOM latency, p50 and p99, over every call of RATE calls/s for --seconds: a call's
  latency runs from its answer (just after its commit) to the first change of the page's Remaining
  Credits that includes it (a balance at or below the one the call answered), read by a
  MutationObserver in the page;
- how many updates the page got per second (pushes are coalesced, whatever the API rate);
- the server's CPU per call with the Overview open and then with the tab gone, under the same load:
  the difference is what the pushes cost, as a share of the metering CPU (target 10 %).

    .venv/bin/python bench/live_updates.py [--seconds 10] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.metering import cpu_of_tree
from tests.console import Console, ConsoleDidNotStart

PASSWORD = "bench-live-password"
START_CENTS = 1_000_000
OWNER = "live-bench@example.com"


async def _load(url: str, key: str, rate: int, seconds: float) -> list[tuple[float, int]]:
    """Open-loop calls of 1 cent at `rate` per second; (answer time, balance answered) of each."""
    answers: list[tuple[float, int]] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=64)) as client:

        async def call() -> None:
            response = await client.post("/api/v1/usage", json={"amount_cents": 1}, headers=headers)
            if response.status_code == 200:
                answers.append((time.time(), response.json()["balance_cents"]))

        tasks = []
        start = time.monotonic()
        for number in range(int(rate * seconds)):
            delay = start + number / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(call()))
        await asyncio.gather(*tasks)
    return answers


def load(url: str, key: str, rate: int, seconds: float) -> list[tuple[float, int]]:
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, _load(url, key, rate, seconds)).result()


def cents(text: str) -> int | None:
    digits = text.replace("$", "").replace(",", "").strip()
    try:
        return round(float(digits) * 100)
    except ValueError:
        return None


def shown_values(mutations: list[tuple[float, str]]) -> list[tuple[float, int]]:
    """Each new value the page showed, when (a text change can come as several mutations)."""
    shown: list[tuple[float, int]] = []
    for at, text in mutations:
        value = cents(text)
        if value is not None and (not shown or shown[-1][1] != value):
            shown.append((at, value))
    return shown


def latencies(answers: list[tuple[float, int]], changes: list[tuple[float, int]]) -> list[float]:
    """Seconds from each answered call to the first page change that includes it."""
    found = []
    for answered_at, balance in answers:
        shown = next((at for at, value in changes if value <= balance and at >= answered_at - 0.05), None)
        if shown is not None:
            found.append(max(shown - answered_at, 0.0))
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


WATCH = """() => {
    window.__changes = [];
    const target = document.querySelector('#remaining-credits');
    new MutationObserver(() => window.__changes.push([Date.now() / 1000, target.textContent]))
        .observe(target, {childList: true, characterData: true, subtree: true});
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--keep-data", action="store_true", help="keep the data directory and the console's log")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="ledgerdesk-live-bench-"))
    try:
        console = Console.start(data_dir, {"DEMO_PASSWORD": PASSWORD, "REFLEX_WEB_WORKDIR": ".web-bench"}, timeout=600)
    except ConsoleDidNotStart as exc:
        raise SystemExit(str(exc)) from None
    url = console.url
    try:
        console.setup(
            "new_account",
            name="Live Bench",
            users=[(OWNER, "Bea Bench", "owner")],
            plan="business",
            credits_cents=START_CENTS,
        )
        key = str(console.setup("new_api_key", email=OWNER, name="Live bench"))
        load(url, key, args.rate, 2)  # warm-up
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or None, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(base_url=url)
            page.goto("/sign-in?next=/billing")
            page.get_by_label("Email").fill(OWNER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.locator("#remaining-credits").filter(has_text="$").wait_for()
            page.evaluate(WATCH)

            cpu = cpu_of_tree(console.process.pid)
            watched = load(url, key, args.rate, args.seconds)
            time.sleep(2)  # the last push
            cpu_watched = cpu_of_tree(console.process.pid) - cpu
            changes = shown_values(page.evaluate("window.__changes"))

            page.goto("about:blank")  # the tab is gone: its socket closes
            time.sleep(2)
            cpu = cpu_of_tree(console.process.pid)
            unwatched = load(url, key, args.rate, args.seconds)
            time.sleep(2)
            cpu_unwatched = cpu_of_tree(console.process.pid) - cpu
            browser.close()
    finally:
        console.stop()

    found = latencies(watched, changes)
    per_call_watched = cpu_watched / max(len(watched), 1) * 1e6
    per_call_unwatched = cpu_unwatched / max(len(unwatched), 1) * 1e6
    push_share = (per_call_watched - per_call_unwatched) / per_call_unwatched if per_call_unwatched else 0.0
    print(
        f"Live updates: {args.rate} calls/s for {args.seconds:g} s against one account, SQLite, one worker, "
        f"{os.cpu_count()} cores shared by console, browser and load generator (load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  calls answered: {len(watched)} watched, {len(unwatched)} with the tab gone")
    print(f"  page updates: {len(changes)} ({len(changes) / args.seconds:.1f}/s); calls seen on the page: {len(found)}")
    if found:
        print(
            f"  commit-to-DOM latency: p50 {statistics.median(found) * 1000:,.0f} ms, "
            f"p99 {percentile(found, 0.99) * 1000:,.0f} ms (target p99 1,000 ms)"
        )
    print(
        f"  server CPU per call: {per_call_watched:,.0f} us with the Overview open, "
        f"{per_call_unwatched:,.0f} us with the tab gone; pushes cost {push_share:.1%} of the metering CPU (target 10 %)"
    )
    if args.keep_data:
        print(f"  data directory (the console's log is app.log): {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
