"""Money as integer micro-units: one millionth of the currency unit, so sums never drift.

Prices per hour, claims, spend counters and the spend cap are all `int` micro-units in
the store and in the scheduler. A decimal amount becomes micro-units once, where it
enters (config, a driver's price list), and becomes a decimal again once, where it leaves
(API, CLI, metrics). Nothing in between adds floats.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
_QUANTUM = Decimal(1).scaleb(-6)  # 0.000001


def to_micros(amount: Decimal | int | float | str, *, exact: bool = False) -> int:
    """`amount` (currency units) in micro-units.

    A float is read as the shortest decimal that round-trips it (`repr`), so `0.1` is
    one tenth, not 0.1000000000000000055...; a decimal with more than six places is
    rounded half to even, or refused with ValueError when `exact`.
    """
    if isinstance(amount, bool):
        raise TypeError("a money amount is not a boolean")
    if isinstance(amount, int):
        return amount * MICROS_PER_UNIT
    try:
        value = Decimal(repr(amount)) if isinstance(amount, float) else Decimal(amount)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    rounded = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    if exact and rounded != value:
        raise ValueError(f"{amount} has more than 6 decimal places (micro-units)")
    return int(rounded.scaleb(6))


def to_decimal(micros: int) -> Decimal:
    """Micro-units as an exact Decimal amount (6 decimal places)."""
    return Decimal(micros).scaleb(-6).quantize(_QUANTUM)


def to_float(micros: int) -> float:
    """Micro-units as the float nearest the exact amount, for JSON and gauges.

    One correctly rounded division: the float's shortest repr (what JSON encoders write)
    is the exact decimal amount for any value below 10**9 currency units.
    """
    return micros / MICROS_PER_UNIT


def format_amount(micros: int, places: int | None = None) -> str:
    """The amount as decimal text: with `places` decimals (rounded half to even), or by
    default with as many as it needs, at least two ("0.30", "0.033333", "12.00")."""
    if places is not None:
        q = Decimal(1).scaleb(-places)
        return str(to_decimal(micros).quantize(q, rounding=ROUND_HALF_EVEN))
    text = str(to_decimal(micros)).rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"
