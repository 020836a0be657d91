"""The burst policy: fill the lowest tier while it stays under the threshold, then burst.

Ranking is one sort key over the candidates that passed every filter:

1. tiers whose utilisation after this placement stays at or below `burst_threshold`
   come before tiers that would go over it;
2. then the lower tier first (tier 0 = private);
3. then the higher total weight;
4. then the cloud name, so equal inputs always give the same answer.

A tier's utilisation after placement is the largest, over vcpus, ram and instances, of
(everything claimed in the tier + this request) / (the tier's capacity), counting bounded
dimensions only; a tier with no bounded dimension is at 0. The request adds the same
amount wherever in the tier it lands, so this is a property of the tier, not of the
candidate. Only clouds that could take a server now (enabled, healthy, not blocklisted)
count towards the tier: capacity that cannot be used is not headroom.

Fallback: when every tier that has a candidate would go over the threshold, the lowest
such tier wins (rule 2). The capacity filter already guarantees the server fits there;
the threshold only decides when bursting starts, it never refuses a server.

A request pinned to an availability zone skips the policy: the best weight wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from canopy.config import SchedulerSettings
from canopy.domain.placement import CloudSnapshot, PlacementRequest
from canopy.domain.specs import Resources

# Fractions like 4/5 must count as "at" a threshold of 0.8, whatever the float rounding.
THRESHOLD_EPSILON = 1e-9

Weights = Mapping[str, Mapping[str, float]]


def tier_loads(
    clouds: Sequence[CloudSnapshot], tiers: set[int], need: Resources
) -> dict[int, float | None]:
    """Each of `tiers`' utilisation if `need` is placed in it; None when it has no limit."""
    # Per tier: claimed and capacity for vcpus, ram, instances; a capacity of -1 marks a
    # dimension some in-service cloud leaves unbounded, which makes the tier's unbounded.
    acc: dict[int, list[int]] = {}
    for c in clouds:
        t = c.tier
        if t not in tiers or not c.enabled or not c.healthy or c.blocklisted:
            continue
        a = acc.get(t)
        if a is None:
            a = acc[t] = [0, 0, 0, 0, 0, 0]
        a[0] += c.vcpus_claimed
        a[2] += c.ram_mb_claimed
        a[4] += c.instances_claimed
        if a[1] >= 0:
            a[1] = -1 if c.vcpus_capacity is None else a[1] + c.vcpus_capacity
        if a[3] >= 0:
            a[3] = -1 if c.ram_mb_capacity is None else a[3] + c.ram_mb_capacity
        if a[5] >= 0:
            a[5] = -1 if c.instances_capacity is None else a[5] + c.instances_capacity
    out: dict[int, float | None] = {}
    for t, a in acc.items():
        load: float | None = None
        for used, cap in (
            (a[0] + need.vcpus, a[1]),
            (a[2] + need.ram_mb, a[3]),
            (a[4] + need.instances, a[5]),
        ):
            if cap < 0:
                continue
            frac = used / cap if cap else (math.inf if used else 0.0)
            load = frac if load is None or frac > load else load
        out[t] = load
    return out


def choose(
    clouds: Sequence[CloudSnapshot],
    candidates: Sequence[CloudSnapshot],
    weights: Weights,
    request: PlacementRequest,
    settings: SchedulerSettings,
) -> tuple[list[CloudSnapshot], str]:
    """Rank the candidates (the first is the choice) and say why in one sentence.

    `clouds` is every snapshot the scheduler was given (for the tier totals), `candidates`
    the ones that passed the filters (at least one), `weights` their weighed totals.
    """
    zone = request.availability_zone
    if zone is not None:
        ranked = sorted(candidates, key=lambda c: (-weights[c.name]["total"], c.name))
        chose = _chose(ranked, weights, request, settings, "")
        return ranked, f"pinned to availability zone {zone}; {chose}"

    threshold = settings.burst_threshold
    loads = tier_loads(clouds, {c.tier for c in candidates}, request.resources)
    over = {
        t: load is not None and load > threshold + THRESHOLD_EPSILON for t, load in loads.items()
    }
    ranked = sorted(
        candidates,
        key=lambda c: (over[c.tier], c.tier, -weights[c.name]["total"], c.name),
    )
    top = ranked[0].tier
    peers = [c for c in ranked if c.tier == top]
    chose = _chose(peers, weights, request, settings, f" in {_tier(top)}")

    limit = f"burst threshold {threshold:.0%}"
    # (tier, phrase) for every tier below the chosen one: why it was passed over.
    passed = [
        (t, f"{_tier(t)} has no candidate left after the filters")
        for t in {c.tier for c in clouds}
        if t < top and t not in loads
    ]
    if not over[top]:
        passed += [
            (t, f"{_tier(t)} would reach {_pct(loads[t])} > {limit}") for t in loads if t < top
        ]
        stays = _stays(loads[top], limit)
        if not passed:
            return ranked, f"{_tier(top)} {stays}; {chose}"
        return ranked, f"{_join(passed)}: burst to {_tier(top)}, which {stays}; {chose}"
    passed += [(t, f"{_tier(t)} would reach {_pct(loads[t])}") for t in loads]
    return ranked, (
        f"no tier stays at or below {limit} after placement ({_join(passed)}): "
        f"fall back to {_tier(top)}, the lowest with a candidate; {chose}"
    )


def _join(parts: list[tuple[int, str]]) -> str:
    return "; ".join(phrase for _, phrase in sorted(parts))


def _tier(t: int) -> str:
    return "tier 0 (private)" if t == 0 else f"tier {t}"


def _pct(load: float | None) -> str:
    return f"{load or 0.0:.0%}"


def _stays(load: float | None, limit: str) -> str:
    if load is None:
        return "has no capacity limit"
    return f"stays at {_pct(load)} <= {limit} after placement"


def _chose(
    peers: Sequence[CloudSnapshot],
    weights: Weights,
    request: PlacementRequest,
    settings: SchedulerSettings,
    where: str,
) -> str:
    """'chose X (why X beat the runner-up among its peers, weight W)'."""
    chosen = peers[0].name
    total = weights[chosen]["total"] + 0.0  # adding 0.0 turns -0.0 into 0.0: no "-0.00"
    why = _why(peers, weights, request.flavor, settings, where)
    return f"chose {chosen} ({why}, weight {total:.2f})"


def _why(
    peers: Sequence[CloudSnapshot],
    weights: Weights,
    flavor: str,
    settings: SchedulerSettings,
    where: str,
) -> str:
    """Name the weigher that put the choice ahead of the runner-up in its tier."""
    if len(peers) == 1:
        return f"only candidate{where}"
    chosen, runner = peers[0], peers[1]
    mine, theirs = weights[chosen.name], weights[runner.name]
    if mine["total"] == theirs["total"]:
        return f"tied with {runner.name} on weight, first by name"
    best = max((k for k in mine if k != "total"), key=lambda k: mine[k] - theirs[k])
    if best == "cost":
        price = chosen.price_per_hour_micros[flavor]
        if all(price <= p.price_per_hour_micros[flavor] for p in peers):
            return f"cheapest{where}"
        return f"cheaper than {runner.name}"
    if best == "utilisation":
        more = "less" if settings.utilisation_weight < 0 else "more"
        return f"{more} utilised than {runner.name} after placement"
    if best == "soft_affinity":
        return f"more group members than {runner.name}"
    if best == "soft_anti_affinity":
        return f"fewer group members than {runner.name}"
    return f"better {best} weight than {runner.name}"
