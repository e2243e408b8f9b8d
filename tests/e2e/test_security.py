"""Security basics seen from outside: the headers every page and API answer carries, and secrets
(the session cookie, the sign-in handoff code, an API key) that never reach the app's log."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, sign_in
from tests.e2e.test_administration import SIDEBAR, _own_account


def test_pages_and_the_api_carry_security_headers(page: Page, live_app: LiveApp):
    response = page.goto("/sign-in")
    headers = response.all_headers()
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "default-src 'self'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in headers  # served over http here

    api = page.request.get(f"{live_app.url}/api/health")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["content-security-policy"] == policy


def test_no_session_handoff_code_or_api_key_reaches_the_log(page: Page, live_app: LiveApp):
    emails = _own_account(live_app)
    handoffs: list[str] = []
    page.on("request", lambda request: handoffs.append(request.url) if "/auth/session" in request.url else None)
    sign_in(page, emails["owner"], next_path="/api-keys")
    expect(page.get_by_role("heading", name="API Keys", level=1)).to_be_visible()
    page.get_by_role("button", name="Add API Key").click()
    page.get_by_role("button", name="Create key").click()
    api_key = page.locator("#new-api-key").inner_text()
    page.get_by_role("dialog").get_by_role("button", name="Done").click()
    answer = page.request.post(
        f"{live_app.url}/api/v1/usage", data={"amount_cents": 1}, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert answer.status == 200, answer.text()
    refused = page.request.post(
        f"{live_app.url}/api/v1/usage", data={"amount_cents": 1}, headers={"Authorization": f"Bearer {api_key}x"}
    )
    assert refused.status == 401

    session_token = next(c["value"] for c in page.context.cookies() if c["name"] == "ld_session")
    (handoff_url,) = handoffs
    handoff_code = handoff_url.split("code=", 1)[1].split("&", 1)[0]
    assert len(session_token) > 20 and len(handoff_code) > 20 and api_key.startswith("ld_")
    log = (live_app.data_dir / "app.log").read_text()
    assert "Ledgerdesk is running at" in log  # the app's own output, all of it
    for secret in (session_token, handoff_code, api_key, api_key[10:]):
        assert secret not in log


def test_html_sent_to_the_api_shows_as_text_on_balance_history(page: Page, live_app: LiveApp):
    emails = _own_account(live_app)
    key = "ld_e2e_html_" + emails["owner"].split("-")[1].split("@")[0] + "x" * 20
    live_app.setup("set_api_key", email=emails["owner"], key=key)
    html = '<img src=x onerror=alert(1)><script>alert("x")</script>'
    answer = page.request.post(
        f"{live_app.url}/api/v1/usage",
        data={"amount_cents": 3, "description": html},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status == 200, answer.text()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, emails["owner"], next_path="/billing/balance-history")
    expect(page.get_by_text(html, exact=True)).to_be_visible()
    expect(page.locator("img[src='x']")).to_have_count(0)
    assert dialogs == []


def _websocket_handshake_status(url: str, origin: str) -> int:
    """The status a browser's websocket handshake to Reflex's /_event socket gets, sent from `origin`."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            (
                "GET /_event/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {parts.netloc}\r\nOrigin: {origin}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        return int(sock.recv(4096).split(b" ", 2)[1])


def test_only_the_consoles_own_origin_gets_cors_answers_and_the_websocket(live_app: LiveApp):
    evil, own = "https://evil.example", live_app.url
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    answer = httpx.get(f"{live_app.url}/api/health", headers={"Origin": evil, "Cookie": "a=b"})
    assert "access-control-allow-origin" not in answer.headers
    for path in ("/api/health", "/_upload"):
        foreign = httpx.options(f"{live_app.url}{path}", headers={"Origin": evil, **preflight})
        assert "access-control-allow-origin" not in foreign.headers
        allowed = httpx.options(f"{live_app.url}{path}", headers={"Origin": own, **preflight})
        assert allowed.headers["access-control-allow-origin"] == own
        assert allowed.headers["access-control-allow-credentials"] == "true"

    assert _websocket_handshake_status(live_app.url, evil) in (400, 403)
    assert _websocket_handshake_status(live_app.url, own) == 101
    # make run's console opened as 127.0.0.1 rather than localhost still connects.
    loopback = own.replace("localhost", "127.0.0.1")
    assert _websocket_handshake_status(live_app.url, loopback) == 101


def test_signing_out_and_in_as_someone_else_leaves_nothing_of_the_previous_user_in_the_tab(
    page: Page, live_app: LiveApp
):
    first, second = _own_account(live_app), _own_account(live_app)
    frames: list[str] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda data: frames.append(data if isinstance(data, str) else data.decode("utf-8", "replace")),
        ),
    )
    sign_in(page, first["owner"], next_path="/team")
    expect(page.get_by_text(first["admin"])).to_be_visible()
    page.locator(SIDEBAR).get_by_role("link", name="API Keys").click()
    page.get_by_role("button", name="Add API Key").click()
    page.get_by_role("button", name="Create key").click()
    api_key = page.locator("#new-api-key").inner_text()
    page.get_by_role("dialog").get_by_role("button", name="Done").click()
    first_token = next(c["value"] for c in page.context.cookies() if c["name"] == "ld_session")
    assert any(api_key in frame for frame in frames)  # the recording sees what the pages get

    signed_out_at = len(frames)
    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    sign_in(page, second["member"])
    expect(page.locator("#header-account-name")).to_contain_text("Admin Test")
    second_token = next(c["value"] for c in page.context.cookies() if c["name"] == "ld_session")

    after = "\n".join(frames[signed_out_at:]) + page.content()
    for previous in (first["owner"], first["admin"], first["member"], api_key):
        assert previous not in after
    assert all(first_token not in frame and second_token not in frame for frame in frames)
