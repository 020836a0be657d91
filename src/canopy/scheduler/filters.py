"""The scheduler's filters: each is one predicate that keeps a cloud or says why not.

A check returns None to keep the cloud, or a short reason to remove it; the pipeline owns
the loop, the counting and the stop when nothing is left. Each filter also says whether
waiting may let a cloud it removed pass later, which is what makes "No valid host"
retryable or final.

The order is part of the contract. Checks that waiting does not change (zone, already
tried, flavor, image, server group) come before the ones it may (enabled, health,
blocklist, capacity, spend cap), so the filter that empties the list tells the truth about
whether a retry can help: if a transient filter empties it, some cloud passed every
permanent check. "enabled" counts as final: only an operator changes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from canopy.domain.money import format_amount
from canopy.domain.placement import CloudSnapshot
from canopy.scheduler import zones
from canopy.scheduler.context import Context

Check = Callable[[CloudSnapshot, Context], str | None]
Applies = Callable[[Context], bool]


def _always(ctx: Context) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Filter:
    """A named check, and whether the clouds it removes may pass after a wait.

    `applies` is False when the request gives the check nothing to test (no zone asked
    for, nothing excluded, ...): the pipeline then records the step without calling
    `check` for every cloud, a call per cloud saved on the common path.
    """

    name: str
    check: Check
    retryable: bool
    applies: Applies = _always


# Pre-filters: coarse checks a database query would do. --------------------------------


def availability_zone(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Keep only the cloud the request names as its availability zone, if it names one."""
    zone = ctx.request.availability_zone
    if zone is None or cloud.name == zone:
        return None
    return f"not the requested availability zone {zone!r}"


def excluded(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Skip clouds this server was already sent to and that failed it (in every zone)."""
    if cloud.name in ctx.request.excluded:
        return "already tried for this server"
    if zones.all_tried(cloud, ctx.request):
        if not cloud.zones:
            return "already tried for this server"
        return f"already tried for this server in every zone ({', '.join(cloud.zones)})"
    return None


def inventory(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Keep clouds whose capacity and flavors have been read (controllers/inventory.py)
    since the requested flavor was made: a flavor created through the API is mapped by
    each cloud's next inventory, which its create asked for (services/flavors.py)."""
    if not cloud.inventoried:
        return "no inventory yet: its capacity and flavors have not been read from the cloud"
    made = ctx.request.flavor_created_at
    if (
        made is not None
        and cloud.inventoried_at is not None
        and cloud.inventoried_at < made
        and ctx.flavor not in cloud.price_per_hour_micros
    ):
        return f"flavor {ctx.flavor!r} is new: the cloud's next inventory maps it"
    return None


def flavor(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Keep clouds that offer the requested flavor (a price means it is offered)."""
    if ctx.flavor in cloud.price_per_hour_micros:
        return None
    return f"flavor {ctx.flavor!r} not offered"


def image(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Keep clouds the requested image is mapped to (no image list means any image)."""
    image_id = ctx.request.image_id
    if cloud.images is None or image_id is None or image_id in cloud.images:
        return None
    return f"image {image_id!r} not mapped"


def enabled(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Keep clouds the operator has not disabled (or removed from the config)."""
    if cloud.removed:
        return "removed from the config (draining its servers)"
    return None if cloud.enabled else "disabled"


def health(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Keep clouds whose last health check passed."""
    return None if cloud.healthy else "unhealthy"


def blocklist(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Skip clouds blocklisted for a while: the whole cloud after a cloud quota error, or
    for this flavor after capacity errors in every zone it has left (see scheduler.zones)."""
    if cloud.blocklisted:
        return "blocklisted after a cloud quota error"
    if not cloud.capacity_blocks:
        return None
    return zones.blocked(cloud, ctx.request)


# Filters. ----------------------------------------------------------------------------


def server_group(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Enforce hard affinity (with the members) and anti-affinity (away from them).

    The soft policies never remove a cloud; they are a weigher.
    """
    policy = ctx.group_policy
    members = ctx.group_members
    if not members or policy is None:
        return None
    if policy == "affinity" and cloud.name not in members:
        return f"affinity: the group's members are on {', '.join(sorted(members))}"
    if policy == "anti-affinity" and cloud.name in members:
        n = members[cloud.name]
        return f"anti-affinity: {n} group member{'s' if n != 1 else ''} already here"
    return None


def capacity(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Keep clouds with room for the request beyond what is claimed (None = unbounded)."""
    v, r, n = cloud.vcpus_capacity, cloud.ram_mb_capacity, cloud.instances_capacity
    # The common case is "fits"; decide it without building any strings.
    if (
        (v is None or v - cloud.vcpus_claimed >= ctx.vcpus)
        and (r is None or r - cloud.ram_mb_claimed >= ctx.ram_mb)
        and (n is None or n - cloud.instances_claimed >= ctx.instances)
    ):
        return None
    short: list[str] = []
    for need, cap, claimed, unit in (
        (ctx.vcpus, v, cloud.vcpus_claimed, "vcpu"),
        (ctx.ram_mb, r, cloud.ram_mb_claimed, "MB ram"),
        (ctx.instances, n, cloud.instances_claimed, "instance"),
    ):
        if cap is not None and cap - claimed < need:
            units = unit if need == 1 or unit == "MB ram" else unit + "s"
            short.append(f"needs {need} {units}, {max(cap - claimed, 0)} free of {cap}")
    return "; ".join(short)


def spend_cap(cloud: CloudSnapshot, ctx: Context) -> str | None:
    """Keep burst clouds only while total burst spend stays within the cap.

    The cap covers every tier >= 1 cloud together; tier 0 is capacity already paid for
    and is never limited by it.
    """
    if cloud.tier < 1:
        return None
    price = cloud.price_per_hour_micros.get(ctx.flavor)
    if price is None:  # not offered: the flavor pre-filter speaks for it
        return None
    now = ctx.burst_spend_per_hour_micros
    after = now + price
    cap = ctx.max_spend_per_hour_micros
    if after <= cap:  # integers: landing exactly on the cap is allowed, exactly
        return None
    return (
        f"burst spend would reach ${format_amount(after)}/h > cap ${format_amount(cap)}/h "
        f"(${format_amount(now)}/h now + ${format_amount(price)}/h here)"
    )


def _zone_requested(ctx: Context) -> bool:
    return ctx.request.availability_zone is not None


def _any_excluded(ctx: Context) -> bool:
    return bool(ctx.request.excluded) or bool(ctx.request.tried_zones)


def _image_requested(ctx: Context) -> bool:
    return ctx.request.image_id is not None


def _hard_group(ctx: Context) -> bool:
    return bool(ctx.group_members) and ctx.group_policy in ("affinity", "anti-affinity")


# The order is the contract described at the top: permanent checks, then transient ones.
# All but server_group, capacity and spend_cap stand for the coarse database query (Nova's
# pre-filters); server_group is a fine check, but permanent, so it runs among them.
STEPS: tuple[Filter, ...] = (
    Filter("availability_zone", availability_zone, retryable=False, applies=_zone_requested),
    Filter("excluded", excluded, retryable=False, applies=_any_excluded),
    Filter("inventory", inventory, retryable=True),
    Filter("flavor", flavor, retryable=False),
    Filter("image", image, retryable=False, applies=_image_requested),
    Filter("server_group", server_group, retryable=False, applies=_hard_group),
    Filter("enabled", enabled, retryable=False),
    Filter("health", health, retryable=True),
    Filter("blocklist", blocklist, retryable=True),
    Filter("capacity", capacity, retryable=True),
    Filter("spend_cap", spend_cap, retryable=True),
)
