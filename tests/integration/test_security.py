"""Security basics: the headers on every response, and email bodies (which carry sign-in links)
kept out of a production log."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.api.security_headers import SecurityHeadersMiddleware
from app.config import get_settings
from app.services import email


@pytest.fixture
def settings_env(monkeypatch):
    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


def _page(request):
    return PlainTextResponse("<html>page</html>", media_type="text/html")


def _upload(request):
    return PlainTextResponse("file", headers={"Content-Security-Policy": "default-src 'none'; sandbox"})


def _client() -> TestClient:
    inner = Starlette(routes=[Route("/billing", _page), Route("/upload", _upload)])
    return TestClient(SecurityHeadersMiddleware(inner))


def test_every_response_carries_the_security_headers_with_stripe_js_allowed():
    headers = _client().get("/billing").headers
    policy = headers["content-security-policy"]
    localstripe = f"http://localhost:{get_settings().localstripe_port}"
    assert f"script-src 'self' 'unsafe-inline' 'unsafe-eval' {localstripe}" in policy
    assert f"connect-src 'self' {localstripe}" in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy and "form-action 'self'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in headers


def test_a_response_with_its_own_policy_keeps_it():
    headers = _client().get("/upload").headers
    assert headers.get_list("content-security-policy") == ["default-src 'none'; sandbox"]
    assert headers["x-content-type-options"] == "nosniff"


def test_with_real_stripe_and_https_the_policy_names_stripe_and_asks_for_hsts(settings_env):
    settings_env(STRIPE_SECRET_KEY="sk_live_x", STRIPE_API_BASE="", PUBLIC_URL="https://billing.example.com")
    headers = _client().get("/billing").headers
    policy = headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline' 'unsafe-eval' https://js.stripe.com" in policy
    assert "frame-src https://js.stripe.com https://hooks.stripe.com" in policy
    assert "connect-src 'self' https://api.stripe.com" in policy
    assert "localhost" not in policy
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_the_backend_trusts_only_the_public_urls_origin_and_loopback_only_outside_production(settings_env):
    settings_env(PUBLIC_URL="https://Billing.Example.com:443/console/")
    assert get_settings().allowed_origins == ("https://billing.example.com",)
    settings_env(PUBLIC_URL="http://localhost:3000")
    assert get_settings().allowed_origins == ("http://localhost:3000", "http://127.0.0.1:3000")
    settings_env(LEDGERDESK_PRODUCTION="true")
    assert get_settings().allowed_origins == ("http://localhost:3000",)


def test_without_smtp_a_production_log_never_holds_an_email_body(session, caplog, settings_env):
    body = "Reset your password: https://billing.example.com/reset?token=secret-reset-token"
    with caplog.at_level(logging.DEBUG):
        email.queue_email(session, to="ann@example.com", subject="Reset your password", body=body)
    assert "secret-reset-token" in caplog.text  # development: the log is the mailbox
    caplog.clear()
    settings_env(LEDGERDESK_PRODUCTION="true")
    with caplog.at_level(logging.DEBUG):
        message = email.queue_email(session, to="ann@example.com", subject="Reset your password", body=body)
    assert "secret-reset-token" not in caplog.text
    assert "not sent, SMTP_URL is not set: Reset your password" in caplog.text
    assert message.body_text == body  # still in the outbox


def test_json_logs_hold_an_email_body_only_outside_production(session, settings_env, json_logs):
    body = "Reset your password: https://billing.example.com/reset?token=secret-reset-token"
    email.queue_email(session, to="ann@example.com", subject="Reset your password", body=body)
    settings_env(LEDGERDESK_PRODUCTION="true")
    email.queue_email(session, to="ann@example.com", subject="Reset your password", body=body)
    (development, production), text = json_logs()
    assert "secret-reset-token" in development["message"]  # development: the log is the mailbox
    assert production["level"] == "WARNING" and production["logger"] == "ledgerdesk.email"
    assert "not sent, SMTP_URL is not set: Reset your password" in production["message"]
    assert text.count("secret-reset-token") == 1
