"""An API client against `create_app` over a whole control plane (sim clouds, fake clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from canopy.api.app import create_app
from canopy.domain.wake import Wake
from tests.api.tokens import Caller, caller
from tests.controllers.harness import Plane, make_plane

# A small free private cloud (8 vcpus) and a large priced public one: m1.small servers
# fill private up to the burst threshold, then burst to public at 0.05 per hour each.
CLOUDS = """
[scheduler]
burst_threshold = 0.8

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 65536
boot_seconds = 2
api_latency_ms = 5

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 2
api_latency_ms = 5
price_per_vcpu_hour = 0.05
"""


@dataclass
class Api:
    """The app and a client whose every request carries an admin token (`admin`); build
    other callers with `tests.api.tokens.caller` and pass their `headers`."""

    plane: Plane
    app: FastAPI
    client: httpx.AsyncClient
    wake: Wake
    admin: Caller

    async def place(self, n: int = 1, **kw: Any) -> list[str]:
        """Create `n` servers and step the controllers until each has a cloud."""
        ids = await self.plane.create(n, **kw)

        async def placed() -> bool:
            servers = {s.id: s for s in await self.plane.servers()}
            return all(servers[i].cloud is not None for i in ids)

        await self.plane.run_until(placed)
        return ids


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    plane = await make_plane(db_url, tmp_path, toml=CLOUDS)
    wake = Wake()
    app = create_app(settings=plane.settings, db=plane.db, clock=plane.clock, wake=wake)
    transport = httpx.ASGITransport(app=app)
    try:
        admin = await caller(plane.db, plane.clock, project="admin", user="admin", role="admin")
        async with httpx.AsyncClient(
            transport=transport, base_url="http://canopy.test", headers=admin.headers
        ) as c:
            yield Api(plane=plane, app=app, client=c, wake=wake, admin=admin)
    finally:
        await plane.close()


def assert_fault(response: httpx.Response, code: int, name: str) -> str:
    """The response is an OpenStack fault body of this code and name; its message."""
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == [name], body
    assert body[name]["code"] == code
    message = body[name]["message"]
    assert isinstance(message, str) and message
    return message
