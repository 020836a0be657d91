"""The scheduling loop: pre-filters, filters, weighing, burst policy. Pure, no I/O.

`schedule` reads snapshots and returns a decision with its explanation; it never writes
anything. `apply_claim` is the one mutation, for the caller that places a batch of servers
in one transaction and needs each decision to see the ones before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from canopy.config import SchedulerSettings
from canopy.domain.placement import (
    CloudSnapshot,
    Decision,
    Explanation,
    FilterStep,
    PlacementRequest,
)
from canopy.scheduler import policy, weighers, zones
from canopy.scheduler.context import Context
from canopy.scheduler.filters import STEPS
from canopy.scheduler.weighers import Weigher


def schedule(
    clouds: Sequence[CloudSnapshot], request: PlacementRequest, settings: SchedulerSettings
) -> Decision:
    """Choose a cloud for one server, with ordered alternates and the reasons why.

    When no cloud is left, the decision has no cloud, its explanation names the filter
    that emptied the list, and `retryable` says whether waiting may help.
    """
    explanation = Explanation()
    if not clouds:
        return Decision(cloud=None, alternates=[], explanation=explanation)
    ctx = Context.build(clouds, request, settings)
    steps = explanation.steps
    candidates: list[CloudSnapshot] = list(clouds)
    for step in STEPS:
        if not step.applies(ctx):
            steps.append(FilterStep(step.name, len(candidates), {}))
            continue
        check = step.check
        removed = {c.name: why for c in candidates if (why := check(c, ctx)) is not None}
        steps.append(FilterStep(step.name, len(candidates), removed))
        if removed:
            candidates = [c for c in candidates if c.name not in removed]
            if not candidates:
                return Decision(
                    cloud=None, alternates=[], explanation=explanation, retryable=step.retryable
                )
    explanation.weights = weigh(candidates, ctx, weighers.active(ctx, settings))
    ranked, explanation.policy = policy.choose(
        clouds, candidates, explanation.weights, request, settings
    )
    explanation.zone, explanation.zones_skipped = zones.choose(ranked[0], request)
    return Decision(
        cloud=ranked[0].name,
        alternates=[c.name for c in ranked[1:]],
        explanation=explanation,
    )


def weigh(
    candidates: Sequence[CloudSnapshot], ctx: Context, active: Sequence[Weigher]
) -> dict[str, dict[str, float]]:
    """Each candidate's normalised, signed value per weigher, and their sum as "total".

    Every weigher is rescaled to 0..1 over the candidates (all equal -> 0), then multiplied
    by its signed multiplier, so weighers in dollars and in fractions add up fairly.
    """
    out: dict[str, dict[str, float]] = {c.name: {} for c in candidates}
    rows = list(out.values())
    for w in active:
        name, mult = w.name, w.multiplier
        # One candidate, or a zero multiplier: every value is 0, so skip measuring.
        if mult == 0.0 or len(rows) == 1:
            for row in rows:
                row[name] = 0.0
            continue
        values = w.raw(candidates, ctx)
        lo = min(values)
        span = max(values) - lo
        scale = mult / span if span > 0.0 else 0.0
        for row, value in zip(rows, values, strict=True):
            row[name] = (value - lo) * scale
    for row in rows:
        row["total"] = sum(row.values())
    return out


def apply_claim(cloud: CloudSnapshot, request: PlacementRequest) -> None:
    """Count a placement against the snapshot so the next decision in a batch sees it."""
    price = cloud.price_per_hour_micros.get(request.flavor)
    if price is None:
        raise ValueError(f"cloud {cloud.name!r} does not offer flavor {request.flavor!r}")
    res = request.resources
    cloud.vcpus_claimed += res.vcpus
    cloud.ram_mb_claimed += res.ram_mb
    cloud.instances_claimed += res.instances
    cloud.spend_per_hour_micros += price
