"""Facts every filter and weigher needs, computed once per scheduling call.

Filters and weighers run once per cloud per step; anything that does not depend on the
cloud (the request's size, the spend already committed to burst tiers, where a server
group's members live) is worked out here once instead of inside each of them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from canopy.config import SchedulerSettings
from canopy.domain.money import to_micros
from canopy.domain.placement import CloudSnapshot, PlacementRequest


@functools.lru_cache(maxsize=16)
def _cap_micros(amount: Decimal) -> int:
    """The spend cap in micro-units, exact: converted once per amount, not per decision."""
    return to_micros(amount, exact=True)


@dataclass(slots=True)
class Context:
    """The request and the per-call totals the filters and weighers read."""

    request: PlacementRequest
    flavor: str
    vcpus: int
    ram_mb: int
    instances: int
    max_spend_per_hour_micros: int
    # What every tier >= 1 cloud already costs per hour, disabled or not: they all bill.
    burst_spend_per_hour_micros: int
    group_policy: str | None
    # Cloud name -> how many members of the request's server group are there.
    group_members: dict[str, int]

    @classmethod
    def build(
        cls,
        clouds: Sequence[CloudSnapshot],
        request: PlacementRequest,
        settings: SchedulerSettings,
    ) -> Context:
        """Gather the per-call facts from the snapshots, the request and the settings."""
        spend = 0
        for cloud in clouds:
            if cloud.tier >= 1:
                spend += cloud.spend_per_hour_micros
        members: dict[str, int] = {}
        group = request.group
        if group is not None:
            for name in group.member_clouds:
                members[name] = members.get(name, 0) + 1
        res = request.resources
        return cls(
            request=request,
            flavor=request.flavor,
            vcpus=res.vcpus,
            ram_mb=res.ram_mb,
            instances=res.instances,
            max_spend_per_hour_micros=_cap_micros(settings.max_spend_per_hour),
            burst_spend_per_hour_micros=spend,
            group_policy=group.policy if group is not None else None,
            group_members=members,
        )
