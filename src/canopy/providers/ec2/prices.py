"""The shipped EC2 on-demand price table (prices.json), with its date and source.

EC2's API has no prices, so the cheapest instance type that fits a flavor is chosen from
this table. It is a snapshot: `DATE` says how old it is, and `[clouds.ec2] prices`
overrides any type's price (or prices one the table lacks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class PriceTable:
    date: str  # ISO date the prices were read
    source: str
    unit: str
    prices: Mapping[str, Mapping[str, float]]  # region -> instance type -> USD per hour

    def price(
        self, region: str, instance_type: str, overrides: Mapping[str, float] | None = None
    ) -> float | None:
        """The price per hour of `instance_type` in `region`; None when it is not known."""
        if overrides and instance_type in overrides:
            return overrides[instance_type]
        return self.prices.get(region, {}).get(instance_type)


@cache
def shipped() -> PriceTable:
    """The table shipped with canopy (read once)."""
    text = resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return PriceTable(
        date=str(data["date"]),
        source=str(data["source"]),
        unit=str(data["unit"]),
        prices={r: {t: float(p) for t, p in types.items()} for r, types in data["prices"].items()},
    )
