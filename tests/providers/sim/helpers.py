"""Helpers shared by the sim driver's tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from canopy.domain.specs import Resources, ServerSpec
from canopy.providers.sim.driver import SimCompute

MakeSim = Callable[..., SimCompute]

_ids = itertools.count(1)


def spec(
    canopy_id: str | None = None,
    *,
    name: str = "web",
    vcpus: int = 1,
    ram_mb: int = 2048,
    disk_gb: int = 20,
    flavor: str = "m1.small",
) -> ServerSpec:
    """A server spec with a fresh canopy id unless one is given."""
    cid = canopy_id or f"{next(_ids):08x}-0000-4000-8000-000000000000"
    return ServerSpec(
        canopy_id=cid,
        name=name,
        flavor_name=flavor,
        resources=Resources(vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb),
        remote_flavor=None,
        remote_image="cirros",
    )
