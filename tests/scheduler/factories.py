"""Small builders for scheduler tests: clouds, requests, settings and placement runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from canopy.config import SchedulerSettings
from canopy.domain.money import to_micros
from canopy.domain.placement import CloudSnapshot, Decision, FilterStep, PlacementRequest
from canopy.domain.specs import Resources
from canopy.scheduler import apply_claim, schedule

FLAVOR = "m1.small"
SMALL = Resources(vcpus=1, ram_mb=1024)
PUBLIC_PRICE = 0.05


def cloud(
    name: str,
    tier: int = 0,
    *,
    price_per_hour: dict[str, float] | None = None,
    spend_per_hour: float = 0.0,
    **kw: Any,
) -> CloudSnapshot:
    """A cloud offering m1.small: free at tier 0, PUBLIC_PRICE an hour above it.

    Prices and spend are given in currency units and held in micro-units, as the
    placement controller's snapshots hold them.
    """
    if price_per_hour is None:
        price_per_hour = {FLAVOR: 0.0 if tier == 0 else PUBLIC_PRICE}
    return CloudSnapshot(
        name=name,
        tier=tier,
        price_per_hour_micros={f: to_micros(p) for f, p in price_per_hour.items()},
        spend_per_hour_micros=to_micros(spend_per_hour),
        **kw,
    )


def private(name: str = "private", vcpus: int = 8, **kw: Any) -> CloudSnapshot:
    """A tier 0 cloud with room for `vcpus` one-vcpu servers (ram is never the limit)."""
    return cloud(name, 0, vcpus_capacity=vcpus, ram_mb_capacity=10**9, **kw)


def public(name: str = "public", tier: int = 1, **kw: Any) -> CloudSnapshot:
    """An unbounded, priced burst cloud."""
    return cloud(name, tier, **kw)


def request(server_id: str = "s1", **kw: Any) -> PlacementRequest:
    kw.setdefault("flavor", FLAVOR)
    kw.setdefault("resources", SMALL)
    return PlacementRequest(server_id=server_id, **kw)


def settings(**kw: Any) -> SchedulerSettings:
    kw.setdefault("burst_threshold", 0.8)
    kw.setdefault("max_spend_per_hour", 100.0)
    return SchedulerSettings(**kw)


def place_many(
    clouds: Sequence[CloudSnapshot], n: int, cfg: SchedulerSettings, **req: Any
) -> list[Decision]:
    """Place n servers one after another, claiming each like the controller's batch does."""
    by_name = {c.name: c for c in clouds}
    out = []
    for i in range(n):
        r = request(f"s{i + 1}", **req)
        d = schedule(clouds, r, cfg)
        if d.cloud is not None:
            apply_claim(by_name[d.cloud], r)
        out.append(d)
    return out


def step(decision: Decision, name: str) -> FilterStep:
    """The recorded filter step called `name`."""
    matches = [s for s in decision.explanation.steps if s.name == name]
    assert len(matches) == 1, [s.name for s in decision.explanation.steps]
    return matches[0]
