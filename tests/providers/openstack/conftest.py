"""Fixtures for the openstack driver: a real Nova (one per test session) and drivers on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from canopy.domain.clock import SystemClock
from canopy.domain.specs import RemoteServer
from canopy.domain.states import RemoteState
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.options import OpenStackOptions
from tests.interop.nova.harness import RealNova


def clouds_yaml(path: Path, nova: RealNova) -> Path:
    """A clouds.yaml whose entry `nova` reaches the harness without Keystone."""
    path.write_text(
        "clouds:\n"
        "  nova:\n"
        "    auth_type: none\n"
        f"    compute_endpoint_override: {nova.url}\n"
        "    region_name: RegionOne\n"
    )
    return path


@pytest.fixture
async def make_driver(
    real_nova: RealNova, tmp_path: Path
) -> AsyncIterator[Callable[..., OpenStackCompute]]:
    """Drivers on the real Nova: `make_driver(flavor_map=..., ...)` (options by name)."""
    made: list[OpenStackCompute] = []
    config = clouds_yaml(tmp_path / "clouds.yaml", real_nova)

    def make(**options: Any) -> OpenStackCompute:
        opts = OpenStackOptions(
            cloud="nova", clouds_yaml=str(config), schedule_poll_seconds=0.2, **options
        )
        driver = OpenStackCompute("child", opts, SystemClock())
        made.append(driver)
        return driver

    yield make
    for d in made:
        await d.close()


@pytest.fixture
async def driver(make_driver: Callable[..., OpenStackCompute]) -> AsyncIterator[OpenStackCompute]:
    yield make_driver()


async def wait_for(
    probe: Callable[[], Awaitable[RemoteServer | None]],
    done: Callable[[RemoteServer | None], bool],
    *,
    tries: int = 300,
) -> RemoteServer | None:
    """Poll the real Nova (a separate process on its own clock) until `done`."""
    seen = None
    for _ in range(tries):
        seen = await probe()
        if done(seen):
            return seen
        await asyncio.sleep(0.1)
    raise AssertionError(f"Nova never got there; last seen: {seen}")


def in_state(state: RemoteState) -> Callable[[RemoteServer | None], bool]:
    return lambda r: r is not None and r.state == state
