"""Money at the edges: dollars typed by people in, formatted dollars out. Inside, integer cents."""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import format_currency

from app.errors import ValidationFailed

_DOLLARS = re.compile(r"\$?(?P<whole>\d{1,3}(?:,\d{3})+|\d{1,13})(?:\.(?P<cents>\d{1,2}))?", re.ASCII)


def format_usd(cents: int, locale: str = "en_US") -> str:
    """ "$1,234.56"; negatives "-$1.50". Decimal, never float, so no cent is ever rounded away."""
    return format_currency(Decimal(cents).scaleb(-2), "USD", locale=locale)


def parse_dollars(text: str, field: str = "amount") -> int:
    """Cents from "25", "25.5", "$1,000.00". Anything else (letters, negatives, more than two
    decimals) is refused rather than guessed at."""
    match = _DOLLARS.fullmatch((text or "").strip())
    if match is None:
        raise ValidationFailed("Enter an amount in dollars, such as 25 or 25.50.", field=field)
    whole = int(match["whole"].replace(",", ""))
    return whole * 100 + int((match["cents"] or "0").ljust(2, "0"))


def plain_dollars(cents: int) -> str:
    """ "25.00", "-1.50": dollars for CSV exports, without symbol or grouping."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
