"""The explicit driver registry. SDKs are imported lazily, only for clouds that use them."""

from __future__ import annotations

import random
from pathlib import Path

from canopy.config import CloudSettings, Settings
from canopy.domain.clock import Clock
from canopy.domain.errors import Unsupported
from canopy.providers.base import Compute

AVAILABLE = ("sim",)
PLANNED = {
    "ec2": 'the ec2 driver (boto3) is not in this release yet; use driver = "sim" for now',
    "openstack": 'the openstack driver is not in this release yet; use driver = "sim" for now',
}


def check_drivers(settings: Settings) -> None:
    """Fail at start, naming the cloud, if a configured driver cannot be built."""
    for cloud in settings.clouds:
        if cloud.driver in PLANNED:
            raise Unsupported(f"cloud {cloud.name!r}: {PLANNED[cloud.driver]}", cloud=cloud.name)


def sim_state_file(settings: Settings, cloud: CloudSettings) -> Path:
    assert cloud.sim is not None
    if cloud.sim.state_file:
        return Path(cloud.sim.state_file.replace("{data_dir}", str(settings.data_path)))
    return settings.data_path / f"sim-{cloud.name}.db"


def build_driver(settings: Settings, cloud: CloudSettings, clock: Clock) -> Compute:
    """Build the driver for one configured cloud."""
    if cloud.driver == "sim":
        from canopy.providers.sim.driver import SimCompute

        assert cloud.sim is not None
        seed = cloud.sim.seed if cloud.sim.seed is not None else random.randrange(2**32)
        return SimCompute(
            name=cloud.name,
            settings=cloud.sim,
            state_file=sim_state_file(settings, cloud),
            clock=clock,
            seed=seed,
            lost_response_rate=cloud.sim.lost_response_rate,
        )
    raise Unsupported(
        f"cloud {cloud.name!r}: {PLANNED.get(cloud.driver, 'unknown driver ' + cloud.driver)}",
        cloud=cloud.name,
    )


def build_drivers(settings: Settings, clock: Clock) -> dict[str, Compute]:
    check_drivers(settings)
    return {c.name: build_driver(settings, c, clock) for c in settings.clouds}
