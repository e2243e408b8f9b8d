import pytest

from app.errors import ValidationFailed
from app.services.money import format_usd, parse_dollars, plain_dollars


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("25", 2500),
        ("25.5", 2550),
        ("25.50", 2550),
        ("$1,000.00", 100000),
        (" 5 ", 500),
        ("0.07", 7),
        ("1,234,567.89", 123456789),
        ("5000", 500000),
    ],
)
def test_parse_dollars_accepts_plain_amounts(text, cents):
    assert parse_dollars(text) == cents


@pytest.mark.parametrize(
    "text",
    ["", "   ", "abc", "25.505", "-5", "$-5", "5e3", "25.", ".5", "1,00", "12,34.00", "25 USD", "2 5", "1.2.3", "٥"],
)
def test_parse_dollars_refuses_anything_else(text):
    with pytest.raises(ValidationFailed) as error:
        parse_dollars(text, field="payment_amount")
    assert error.value.field == "payment_amount"


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (150, "$1.50"),
        (123456, "$1,234.56"),
        (-150, "-$1.50"),
        (10**15 + 1, "$10,000,000,000,000.01"),
    ],
)
def test_format_usd(cents, text):
    assert format_usd(cents) == text


@pytest.mark.parametrize(("cents", "text"), [(2500, "25.00"), (-150, "-1.50"), (-5, "-0.05"), (0, "0.00")])
def test_plain_dollars(cents, text):
    assert plain_dollars(cents) == text


def test_parse_and_format_round_trip():
    for cents in (1, 99, 100, 123456, 500000):
        assert parse_dollars(format_usd(cents)) == cents
