"""Money in integer micro-units: exact in, exact out."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from canopy.domain.money import format_amount, to_decimal, to_float, to_micros


@pytest.mark.parametrize(
    "amount,micros",
    [
        (0.1, 100_000),  # the float's decimal text, not its binary value
        (0.1 / 3, 33_333),
        (2 / 3, 666_667),
        (0.0000005, 0),  # half to even
        (0.0000015, 2),
        ("0.048", 48_000),
        (Decimal("12.345678"), 12_345_678),
        (7, 7_000_000),
        (1e12, 10**18),
    ],
)
def test_to_micros(amount: float | str | Decimal | int, micros: int) -> None:
    assert to_micros(amount) == micros


def test_exact_conversion_refuses_what_micro_units_cannot_hold() -> None:
    assert to_micros(Decimal("0.000001"), exact=True) == 1
    with pytest.raises(ValueError, match="6 decimal places"):
        to_micros(Decimal("0.0000001"), exact=True)
    for bad in ("abc", float("nan"), float("inf")):
        with pytest.raises(ValueError):
            to_micros(bad)
    with pytest.raises(TypeError):
        to_micros(True)


@pytest.mark.parametrize(
    "micros,shown",
    [(0, "0.00"), (300_000, "0.30"), (33_333, "0.033333"), (12_000_000, "12.00"), (1, "0.000001")],
)
def test_format_amount(micros: int, shown: str) -> None:
    assert format_amount(micros) == shown


def test_format_amount_with_places_rounds_half_to_even() -> None:
    assert format_amount(33_333, 3) == "0.033"
    assert format_amount(2_500, 2) == "0.00" and format_amount(7_500, 2) == "0.01"


def test_json_numbers_are_the_exact_decimal_amounts() -> None:
    """One division from the integer: JSON writes the shortest float text, which reads
    back as the decimal amount itself for any amount below a billion."""
    for micros in (1, 33_333, 99_999, 866_658, 49_966_667, 999_999_999_999_999):
        assert Decimal(json.dumps(to_float(micros))) == to_decimal(micros)
