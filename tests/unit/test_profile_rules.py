"""The rules of a new password and how a session's device is described."""

from __future__ import annotations

import pytest

from app.errors import ValidationFailed
from app.services.passwords import check_new_password
from app.services.profile import describe_device


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-one", "Use at least 10 characters."),
        ("x" * 129, "Use at most 128 characters."),
        ("ana.lopez@example.com", "The password must not contain your email address."),
        ("my-ANA.LOPEZ-password", "The password must not contain your email address."),
    ],
)
def test_a_new_password_is_refused_when_short_long_or_containing_the_email(password, message):
    with pytest.raises(ValidationFailed) as refused:
        check_new_password(password, "ana.lopez@example.com", field="new_password")
    assert (refused.value.field, refused.value.message) == ("new_password", message)


def test_a_long_password_without_the_email_is_accepted():
    check_new_password("correct horse battery", "ana.lopez@example.com")


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on macOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "Unknown device"),
        ("", "Unknown device"),
    ],
)
def test_a_session_names_its_browser_and_system(user_agent, device):
    assert describe_device(user_agent) == device
