"""A real SMTP server (aiosmtpd) on a free port, with SMTP_URL pointed at it."""

import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from app.config import get_settings


class _Inbox:
    def __init__(self):
        self.messages = []
        self.event = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        self.event.set()
        return "250 OK"


@pytest.fixture
def smtp_server(monkeypatch):
    inbox = _Inbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{port}")
    get_settings.cache_clear()
    yield inbox
    controller.stop()
    get_settings.cache_clear()
