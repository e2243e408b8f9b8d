"""Security headers on every HTTP response the console serves: pages, assets and API.

A pure ASGI wrapper (it only adds headers to `http.response.start`), applied around Reflex's whole
backend so the prerendered pages of the production server get them too. A header a response
already sets is kept: uploaded files carry their own stricter Content-Security-Policy."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings, get_settings

REAL_STRIPE = {
    "script": ["https://js.stripe.com"],
    "connect": ["https://api.stripe.com"],
    "frame": ["https://js.stripe.com", "https://hooks.stripe.com"],
    "img": ["https://*.stripe.com"],
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(settings: Settings) -> str:
    """Reflex's runtime evaluates the scripts of `rx.call_script` and React injects inline styles,
    hence 'unsafe-eval' and 'unsafe-inline'; everything else is this origin and Stripe.js."""
    if settings.uses_localstripe:
        local = [origin for origin in (_origin(settings.stripe_js_url), _origin(settings.stripe_api_base)) if origin]
        stripe = {"script": local, "connect": local, "frame": local, "img": local}
    else:
        stripe = REAL_STRIPE
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-inline'", "'unsafe-eval'", *stripe["script"]],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *stripe["img"]],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'", *stripe["connect"]],
        "frame-src": stripe["frame"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(dict.fromkeys(values))}" for name, values in directives.items())


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": content_security_policy(settings),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "strict-origin-when-cross-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=()",
    }
    if settings.public_url.startswith("https://"):
        headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
    return [(name.encode(), value.encode()) for name, value in headers.items()]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app
        self.headers = security_headers(get_settings())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.headers if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
