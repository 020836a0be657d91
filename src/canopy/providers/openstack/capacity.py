"""A child's room for canopy: its project's quota (`GET /limits`), its totals narrowed by
the hypervisors' when the credentials may read them (admin).

What is free is the quota's headroom alone. The hypervisors' figures are physical (their
vcpus and memory), while Nova places by its allocation ratios (16 vcpus and 1.5 times the
memory per physical one, by default), which no API shows a client: a hypervisor reported
full often takes more servers, so its "free" would make others' use look larger than it
is and canopy would leave room unused (its share of the cloud is the total less others'
use: domain/share.py). The quota is what Nova enforces exactly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy.domain.specs import Capacity


def _unlimited(value: Any) -> int | None:
    """A Nova limit: -1 (or absent) means unlimited, which canopy calls unknown."""
    if value is None or int(value) < 0:
        return None
    return int(value)


def _least(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def capacity_of(limits: Mapping[str, Any], hv: Mapping[str, int] | None) -> Capacity:
    """Capacity from a `GET /limits` body and the hypervisors' summed totals (or None)."""
    a = (limits.get("limits") or {}).get("absolute") or {}
    cores, ram, instances = (
        _unlimited(a.get("maxTotalCores")),
        _unlimited(a.get("maxTotalRAMSize")),
        _unlimited(a.get("maxTotalInstances")),
    )
    cores_free = None if cores is None else max(0, cores - int(a.get("totalCoresUsed") or 0))
    ram_free = None if ram is None else max(0, ram - int(a.get("totalRAMUsed") or 0))
    inst_free = (
        None if instances is None else max(0, instances - int(a.get("totalInstancesUsed") or 0))
    )
    if hv is not None:
        cores = _least(cores, hv["vcpus"])
        ram = _least(ram, hv["memory_mb"])
    return Capacity(
        vcpus_total=cores,
        ram_mb_total=ram,
        instances_total=instances,
        vcpus_free=cores_free,
        ram_mb_free=ram_free,
        instances_free=inst_free,
    )


def hypervisor_totals(client: Any) -> dict[str, int] | None:
    """The hypervisors' summed room, from a NovaClient (admin only; 2.87 is the last
    version with it); None when the child does not show it."""
    data = client.request(
        "GET",
        "/os-hypervisors/statistics",
        "hypervisor statistics",
        missing_ok=True,
        microversion="2.1",
    )
    stats = (data or {}).get("hypervisor_statistics")
    if not stats:
        return None
    return {
        k: int(stats.get(k) or 0) for k in ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used")
    }
