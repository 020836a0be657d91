"""Preview and /validate see the region canopy is configured to serve, as a create does:
`AWS::Region` resolves to it and a nested stack's `context.region_name` may name it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from canopy.api.app import create_app
from canopy.domain.wake import Wake
from tests.api.conftest import CLOUDS, caller
from tests.controllers.harness import make_plane


@pytest.fixture
async def kent(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    plane = await make_plane(
        db_url, tmp_path, toml=CLOUDS, overrides={"identity": {"region": "Kent"}}
    )
    app = create_app(settings=plane.settings, db=plane.db, clock=plane.clock, wake=Wake())
    try:
        admin = await caller(plane.db, plane.clock, project="admin", user="admin", role="admin")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://canopy.test",
            headers=admin.headers,
        ) as c:
            yield c, admin.project_id
    finally:
        await plane.close()


async def test_preview_resolves_the_configured_region(
    kent: tuple[httpx.AsyncClient, str],
) -> None:
    client, pid = kent
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "where": {"Type": "OS::Heat::Value", "Properties": {"value": {"Ref": "AWS::Region"}}}
        },
    }
    r = await client.post(
        f"/orchestration/v1/{pid}/stacks/preview", json={"stack_name": "p", "template": template}
    )
    assert r.status_code == 200, r.text
    [res] = r.json()["stack"]["resources"]
    assert res["properties"]["value"] == "Kent"


async def test_validate_accepts_a_nested_stack_in_the_configured_region(
    kent: tuple[httpx.AsyncClient, str],
) -> None:
    client, pid = kent

    def nested(region: str) -> dict[str, object]:
        return {
            "heat_template_version": "2016-10-14",
            "resources": {
                "remote": {
                    "type": "OS::Heat::Stack",
                    "properties": {
                        "context": {"region_name": region},
                        "template": {"heat_template_version": "2016-10-14"},
                    },
                }
            },
        }

    ok = await client.post(f"/orchestration/v1/{pid}/validate", json={"template": nested("Kent")})
    assert ok.status_code == 200, ok.text
    other = await client.post(
        f"/orchestration/v1/{pid}/validate", json={"template": nested("RegionOne")}
    )
    assert other.status_code == 400, other.text
    assert "canopy serves one region, Kent" in other.text
