"""A child's room for canopy: its project's quota headroom (`GET /limits`), narrowed by
the hypervisors' free room when the credentials may read it (admin)."""

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
        cores_free = _least(cores_free, max(0, hv["vcpus"] - hv["vcpus_used"]))
        ram_free = _least(ram_free, max(0, hv["memory_mb"] - hv["memory_mb_used"]))
    return Capacity(
        vcpus_total=cores,
        ram_mb_total=ram,
        instances_total=instances,
        vcpus_free=cores_free,
        ram_mb_free=ram_free,
        instances_free=inst_free,
    )
