"""The scheduler's weighers: each returns a raw number per cloud, in its own units.

The pipeline rescales every weigher to 0..1 over the remaining candidates and multiplies
by a signed multiplier from the settings, so a weigher never needs to know whether more
is better: a negative cost multiplier prefers cheap clouds, a negative utilisation
multiplier spreads and a positive one packs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from canopy.config import SchedulerSettings
from canopy.domain.placement import CloudSnapshot
from canopy.scheduler.context import Context

Raw = Callable[[Sequence[CloudSnapshot], Context], list[float]]

# Soft group policies have no setting: one member's worth of preference, on a par with the
# cost and utilisation defaults.
SOFT_AFFINITY_MULTIPLIER = 1.0
SOFT_ANTI_AFFINITY_MULTIPLIER = -1.0


@dataclass(frozen=True, slots=True)
class Weigher:
    """A raw measure over the candidates and the signed multiplier it gets once normalised.

    `raw` returns one number per candidate, in order. It takes the whole list, like Nova's
    `weigh_objects`, because one comprehension costs far less than a call per cloud.
    """

    name: str
    raw: Raw
    multiplier: float


def cost(clouds: Sequence[CloudSnapshot], ctx: Context) -> list[float]:
    """Price per hour of the requested flavor on each cloud (micro-units)."""
    flavor = ctx.flavor
    return [float(c.price_per_hour_micros[flavor]) for c in clouds]


def utilisation(clouds: Sequence[CloudSnapshot], ctx: Context) -> list[float]:
    """Each cloud's utilisation after the placement (0 when unbounded).

    The same arithmetic as `CloudSnapshot.utilisation(extra)` (a test holds them equal),
    written out because the method builds a list for every cloud of every decision.
    """
    vcpus, ram_mb, instances = ctx.vcpus, ctx.ram_mb, ctx.instances
    out = []
    for c in clouds:
        u = 0.0
        cap = c.vcpus_capacity
        if cap:
            f = (c.vcpus_claimed + vcpus) / cap
            if f > u:
                u = f
        cap = c.ram_mb_capacity
        if cap:
            f = (c.ram_mb_claimed + ram_mb) / cap
            if f > u:
                u = f
        cap = c.instances_capacity
        if cap:
            f = (c.instances_claimed + instances) / cap
            if f > u:
                u = f
        out.append(u)
    return out


def tier(clouds: Sequence[CloudSnapshot], ctx: Context) -> list[float]:
    """Each cloud's tier number (0 = private)."""
    return [float(c.tier) for c in clouds]


def group_members(clouds: Sequence[CloudSnapshot], ctx: Context) -> list[float]:
    """How many members of the request's server group are already on each cloud."""
    members = ctx.group_members
    return [float(members.get(c.name, 0)) for c in clouds]


def active(ctx: Context, settings: SchedulerSettings) -> tuple[Weigher, ...]:
    """The weighers that apply to this request, with their multipliers."""
    base = _configured(settings.cost_weight, settings.utilisation_weight, settings.tier_weight)
    return base + _SOFT.get(ctx.group_policy or "", ())


@functools.lru_cache(maxsize=16)
def _configured(
    cost_weight: float, utilisation_weight: float, tier_weight: float
) -> tuple[Weigher, ...]:
    # Keyed on the three numbers because the settings model is not hashable; building
    # the weighers for every decision was a measurable share of a decision's cost.
    return (
        Weigher("cost", cost, cost_weight),
        Weigher("utilisation", utilisation, utilisation_weight),
        Weigher("tier", tier, tier_weight),
    )


_SOFT: dict[str, tuple[Weigher, ...]] = {
    "soft-affinity": (Weigher("soft_affinity", group_members, SOFT_AFFINITY_MULTIPLIER),),
    "soft-anti-affinity": (
        Weigher("soft_anti_affinity", group_members, SOFT_ANTI_AFFINITY_MULTIPLIER),
    ),
}
