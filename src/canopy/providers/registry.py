"""The explicit driver registry. SDKs are imported lazily, only for clouds that use them.

Drivers are built for the configured clouds and for the clouds that left the config but
still hold servers (draining): those are built from the settings their `clouds` row kept
(`stored_settings`), which never include a secret.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import to_jsonable_python

from canopy.config import CloudSettings, Settings
from canopy.domain.clock import Clock
from canopy.domain.errors import Unsupported
from canopy.private_files import create_private_file
from canopy.providers.base import Compute

log = logging.getLogger("canopy.providers")

AVAILABLE = ("sim", "ec2", "openstack")
# Drivers named in the config schema but not in this release (none today).
PLANNED: dict[str, str] = {}


def check_drivers(settings: Settings) -> None:
    """Fail at start, naming the cloud, if a configured driver cannot be built."""
    for cloud in settings.clouds:
        if cloud.driver in PLANNED:
            raise Unsupported(f"cloud {cloud.name!r}: {PLANNED[cloud.driver]}", cloud=cloud.name)


def stored_settings(cloud: CloudSettings) -> dict[str, Any]:
    """What a cloud's row keeps of its config: everything but its name and its secrets.

    A secret is any value typed `SecretStr` / `SecretBytes` (e.g. a password or an
    inline key); such a field is left out, not masked, so nothing secret reaches the
    database. Credentials by reference (`credentials = "env"`) are not secrets.
    """
    out = without_secrets(cloud)
    out.pop("name", None)
    return out


def without_secrets(model: BaseModel) -> dict[str, Any]:
    """`model` as JSON-able data, every `SecretStr` / `SecretBytes` field left out."""
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr | SecretBytes):
            continue
        if isinstance(value, BaseModel):
            out[name] = without_secrets(value)
        else:
            out[name] = to_jsonable_python(value)
    return out


def settings_from_stored(name: str, stored: Mapping[str, Any]) -> CloudSettings:
    """The settings of a cloud that left the config, rebuilt from its row.

    Raises `ValueError` (a pydantic ValidationError) if they no longer validate, e.g.
    because a setting was renamed since they were stored."""
    return CloudSettings.model_validate({**stored, "name": name})


def sim_state_file(settings: Settings, cloud: CloudSettings) -> Path:
    assert cloud.sim is not None
    if cloud.sim.state_file:
        return Path(cloud.sim.state_file.replace("{data_dir}", str(settings.data_path)))
    return settings.data_path / f"sim-{cloud.name}.db"


def private_files(settings: Settings, clouds: Iterable[CloudSettings]) -> list[Path]:
    """The files the drivers of `clouds` keep locally (to be readable by their owner only)."""
    out: list[Path] = []
    for cloud in clouds:
        if cloud.sim is not None:
            out.append(sim_state_file(settings, cloud))
    return out


def build_driver(
    settings: Settings,
    cloud: CloudSettings,
    clock: Clock,
    credentials: Mapping[str, str] | None = None,
) -> Compute:
    """Build the driver for one cloud; `credentials`: its stored ones, opened from the
    vault (clouds added at run time with `credentials = "stored"`)."""
    if cloud.driver == "sim":
        from canopy.providers.sim.driver import SimCompute

        assert cloud.sim is not None
        seed = cloud.sim.seed if cloud.sim.seed is not None else random.randrange(2**32)
        state_file = sim_state_file(settings, cloud)
        # An SQLite file (and its -wal / -shm, which take the file's mode) is created
        # private here rather than with the process umask.
        create_private_file(state_file)
        return SimCompute(
            name=cloud.name,
            settings=cloud.sim,
            state_file=state_file,
            clock=clock,
            seed=seed,
            lost_response_rate=cloud.sim.lost_response_rate,
        )
    if cloud.driver == "openstack":
        from canopy.providers.openstack.driver import OpenStackCompute

        assert cloud.openstack is not None
        options = cloud.openstack.model_copy(update={"flavor_map": cloud.merged_flavor_map()})
        return OpenStackCompute(
            cloud.name, options, clock, concurrency=cloud.concurrency, credentials=credentials
        )
    if cloud.driver == "ec2":
        from canopy.providers.ec2.driver import Ec2Compute

        assert cloud.ec2 is not None
        return Ec2Compute(
            cloud.name, cloud.ec2, concurrency=cloud.concurrency, credentials=credentials
        )
    raise Unsupported(
        f"cloud {cloud.name!r}: {PLANNED.get(cloud.driver, 'unknown driver ' + cloud.driver)}",
        cloud=cloud.name,
    )


def draining_settings(
    settings: Settings, stored: Mapping[str, Mapping[str, Any] | None]
) -> list[CloudSettings]:
    """Settings for the draining clouds (name -> stored settings) that can have a driver.

    A cloud whose settings were never stored (it left the config before canopy kept
    them) or no longer validate gets none, with a warning that says how to drain it.
    """
    configured = {c.name for c in settings.clouds}
    out: list[CloudSettings] = []
    for name, kept in sorted(stored.items()):
        if name in configured:
            continue
        if kept is None:
            log.warning(
                "cloud %r left the config and still holds servers, but its settings were not "
                "kept; add it back to the config to delete them",
                name,
            )
            continue
        try:
            cfg = settings_from_stored(name, kept)
        except ValidationError as e:
            log.warning(
                "cloud %r is draining but its kept settings are no longer valid (%s); add it "
                "back to the config to delete its servers",
                name,
                e.errors()[0]["msg"] if e.errors() else e,
            )
            continue
        if cfg.driver in PLANNED:
            log.warning("cloud %r is draining but %s", name, PLANNED[cfg.driver])
            continue
        if getattr(getattr(cfg, cfg.driver, None), "credentials", None) == "stored":
            continue  # its credentials are sealed: the worker's fleet builds it (fleet.py)
        out.append(cfg)
    return out


def build_drivers(
    settings: Settings, clock: Clock, draining: Iterable[CloudSettings] = ()
) -> dict[str, Compute]:
    """Drivers for every configured cloud, and for the `draining` ones."""
    check_drivers(settings)
    clouds = [*settings.clouds, *draining]
    return {c.name: build_driver(settings, c, clock) for c in clouds}
