"""A cloud's row as the scheduler sees it: one builder for servers and reservations."""

from __future__ import annotations

from datetime import datetime

from canopy.domain.placement import CloudSnapshot
from canopy.store.claims import Usage
from canopy.store.models import Cloud


def counted(c: Cloud) -> Usage:
    """What the cloud's counters say is in use now (a cache of its open claims)."""
    return Usage(
        vcpus=c.vcpus_claimed,
        ram_mb=c.ram_mb_claimed,
        instances=c.instances_claimed,
        spend_micros=c.spend_per_hour_micros,
    )


def cloud_snapshot(
    c: Cloud,
    now: datetime,
    claimed: Usage,
    *,
    price_per_hour_micros: dict[str, int],
    images: frozenset[str] | None,
    zones: tuple[str, ...] = (),
    capacity_blocks: dict[str, dict[str, str]] | None = None,
) -> CloudSnapshot:
    """A cloud's row as the scheduler sees it, `claimed` being what is held on it over the
    window asked about (servers and reservations build theirs the same way)."""
    return CloudSnapshot(
        name=c.name,
        tier=c.tier,
        enabled=c.enabled,
        removed=c.removed_at is not None,
        healthy=c.healthy,
        blocklisted=c.blocklisted_until is not None and c.blocklisted_until > now,
        vcpus_capacity=c.vcpus_capacity,
        ram_mb_capacity=c.ram_mb_capacity,
        instances_capacity=c.instances_capacity,
        vcpus_claimed=claimed.vcpus,
        ram_mb_claimed=claimed.ram_mb,
        instances_claimed=claimed.instances,
        spend_per_hour_micros=claimed.spend_micros,
        price_per_hour_micros=price_per_hour_micros,
        images=images,
        inventoried=c.capacity_updated_at is not None,
        inventoried_at=c.capacity_updated_at,
        zones=zones,
        capacity_blocks=capacity_blocks or {},
    )
