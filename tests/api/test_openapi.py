"""/openapi.json and /docs cover every router: identity, compute, image, admin, health."""

from __future__ import annotations

import httpx

from canopy.api.app import create_app
from canopy.config import load_settings
from canopy.domain.clock import FakeClock
from canopy.store.db import Database


async def test_openapi_covers_every_router(tmp_path: object) -> None:
    settings = load_settings(None, env={}, overrides={"data_dir": str(tmp_path)})
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    app = create_app(settings=settings, db=db, clock=FakeClock())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        spec = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    await db.dispose()
    paths = set(spec["paths"])
    for expected in (
        "/identity/v3/auth/tokens",
        "/identity/v3/projects",
        "/compute/v2.1/servers",
        "/compute/v2.1/servers/{server_id}/action",
        "/compute/v2.1/os-keypairs",
        "/compute/v2.1/os-server-groups",
        "/compute/v2.1/os-quota-sets/{project_id}",
        "/compute/v2.1/limits",
        "/image/v2/images",
        "/canopy/v1/clouds",
        "/canopy/v1/placements",
        "/healthz",
    ):
        assert expected in paths, f"{expected} missing from /openapi.json"
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
