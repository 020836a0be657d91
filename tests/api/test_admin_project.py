"""The admin project is configured (`[identity] admin_project_name`): `canopy up`'s bootstrap
makes its admin there, and the admin role anywhere else is no cloud admin."""

from __future__ import annotations

from pathlib import Path

import httpx

from canopy.api.app import create_app
from canopy.bootstrap import ensure_admin
from tests.api.tokens import caller
from tests.controllers.harness import make_plane

BASE = "http://canopy.test"


async def _login(client: httpx.AsyncClient, user: str, password: str, project: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": "Default"}, "password": password}
                },
            },
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }
    }
    r = await client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["token"]["is_admin_project"] is (project == "ops")
    return r.headers["X-Subject-Token"]


async def test_the_configured_admin_project_makes_cloud_admins(db_url: str, tmp_path: Path) -> None:
    plane = await make_plane(
        db_url, tmp_path, overrides={"identity": {"admin_project_name": "ops"}}
    )
    try:
        boot = await ensure_admin(plane.db, plane.clock, "boot-pw", project_name="ops")
        assert boot.created
        # Someone with the admin role on a project merely called "admin".
        await caller(
            plane.db, plane.clock, project="admin", user="eve", role="admin", password="pw"
        )
        app = create_app(settings=plane.settings, db=plane.db, clock=plane.clock)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            ops = await _login(c, "admin", "boot-pw", "ops")
            eve = await _login(c, "eve", "pw", "admin")
            r = await c.get("/canopy/v1/clouds", headers={"X-Auth-Token": ops})
            assert r.status_code == 200
            r = await c.get("/canopy/v1/clouds", headers={"X-Auth-Token": eve})
            assert r.status_code == 403
            r = await c.get("/identity/v3/users", headers={"X-Auth-Token": eve})
            assert r.status_code == 403
            r = await c.get("/compute/v2.1/servers?all_tenants=1", headers={"X-Auth-Token": eve})
            assert r.status_code == 403
    finally:
        await plane.close()
