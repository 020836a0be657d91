"""The clouds and spend views: capacity, claims, utilisation and spend move with placements."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from canopy.store.capacity_blocks import block
from canopy.store.models import Cloud, Flavor

from .conftest import Api, assert_fault


async def _cloud(api: Api, name: str) -> dict[str, Any]:
    r = await api.client.get(f"/canopy/v1/clouds/{name}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_list_shows_capacity_and_an_idle_start(api: Api) -> None:
    r = await api.client.get("/canopy/v1/clouds")
    assert r.status_code == 200
    clouds = {c["name"]: c for c in r.json()["items"]}
    assert list(clouds) == ["private", "public"]  # by tier, then name
    private = clouds["private"]
    assert private["driver"] == "sim" and private["tier"] == 0
    assert private["enabled"] and private["healthy"] and not private["blocklisted"]
    assert private["capacity"] == {"vcpus": 8, "ram_mb": 65536, "instances": None}
    assert private["cloud_total"] == private["capacity"]  # nothing else runs there
    assert private["used_by_others"] == {"vcpus": 0, "ram_mb": 0, "instances": None}
    assert private["claimed"] == {"vcpus": 0, "ram_mb": 0, "instances": 0}
    assert private["utilisation"] == 0.0
    assert private["spend_per_hour"] == 0.0
    assert private["servers"] == {}
    assert private["has_credentials"] is False


async def test_placing_servers_moves_claims_utilisation_and_spend(api: Api) -> None:
    await api.place(2)
    private = await _cloud(api, "private")
    assert private["claimed"] == {"vcpus": 2, "ram_mb": 4096, "instances": 2}
    assert private["utilisation"] == 0.25  # 2 of 8 vcpus; ram is 4096 of 65536
    assert sum(private["servers"].values()) == 2
    public = await _cloud(api, "public")
    assert public["claimed"]["instances"] == 0 and public["spend_per_hour"] == 0.0

    # Private is filled to the burst threshold (6 of 8 vcpus); the rest bursts to public.
    await api.place(6)
    private = await _cloud(api, "private")
    public = await _cloud(api, "public")
    assert private["claimed"]["vcpus"] == 6 and private["utilisation"] == 0.75
    assert public["claimed"]["instances"] == 2
    assert public["spend_per_hour"] == 0.1
    assert 0.0 < public["utilisation"] < 0.01

    r = await api.client.get("/canopy/v1/spend")
    assert r.status_code == 200
    spend = r.json()
    assert spend["total_per_hour"] == 0.1
    assert spend["burst_per_hour"] == 0.1
    assert spend["cap_per_hour"] == api.plane.settings.scheduler.max_spend_per_hour
    assert spend["headroom_per_hour"] == spend["cap_per_hour"] - 0.1
    assert {c["name"]: c["spend_per_hour"] for c in spend["clouds"]} == {
        "private": 0.0,
        "public": 0.1,
    }


async def test_servers_canopy_did_not_create_show_as_used_by_others(api: Api) -> None:
    await api.plane.sim("private").create_out_of_band(None, "operator-vm", vcpus=3, ram_mb=4096)
    await api.plane.worker.inventory.run_once(force=True)
    private = await _cloud(api, "private")
    assert private["cloud_total"] == {"vcpus": 8, "ram_mb": 65536, "instances": None}
    assert private["used_by_others"] == {"vcpus": 3, "ram_mb": 4096, "instances": None}
    assert private["capacity"] == {"vcpus": 5, "ram_mb": 61440, "instances": None}
    r = await api.client.get("/canopy/v1/clouds")
    listed = {c["name"]: c for c in r.json()["items"]}
    assert listed["private"]["used_by_others"] == private["used_by_others"]


async def test_server_counts_follow_status(api: Api) -> None:
    [sid] = await api.place(1)

    async def active() -> bool:
        return (await api.plane.service.get(api.plane.ctx, sid)).status == "ACTIVE"

    await api.plane.run_until(active)
    assert (await _cloud(api, "private"))["servers"] == {"ACTIVE": 1}


async def test_unknown_cloud_is_item_not_found(api: Api) -> None:
    for name in ("nope", "a" * 300, "%00", ".."):
        r = await api.client.get(f"/canopy/v1/clouds/{name}")
        assert_fault(r, 404, "itemNotFound")
    r = await api.client.get("/canopy/v1/clouds/%FF%FE")  # not even text: see request_guard
    assert "not valid UTF-8" in assert_fault(r, 400, "badRequest")


SECRET = b"fernet-token-SECRET-0123456789"


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_credentials_appear_in_no_response(api: Api) -> None:
    await api.place(1)
    async with api.plane.db.session() as s:
        await s.execute(update(Cloud).where(Cloud.name == "public").values(credentials=SECRET))
    forms = [SECRET.decode(), base64.b64encode(SECRET).decode(), SECRET.hex()]
    sid = (await api.plane.servers())[0].id
    paths = [
        "/canopy/v1/clouds",
        "/canopy/v1/clouds/public",
        "/canopy/v1/spend",
        "/canopy/v1/placements",
        f"/canopy/v1/servers/{sid}/placements",
        "/canopy/v1/flavors",
        "/canopy/v1/images",
        "/canopy/v1/servers",
        f"/canopy/v1/servers/{sid}",
        "/metrics",
        "/healthz",
        "/openapi.json",
    ]
    for path in paths:
        r = await api.client.get(path)
        assert r.status_code == 200, (path, r.text)
        for form in forms:
            assert form not in r.text, path
        if r.headers["content-type"].startswith("application/json"):
            body = r.json()
            if path == "/openapi.json":
                # Request bodies may take credentials (write-only); no answer has them.
                for schema in ("CloudCreate", "CloudUpdate"):
                    assert "credentials" in body["components"]["schemas"].pop(schema)["properties"]
            assert "credentials" not in _keys(body), path
    public = await _cloud(api, "public")
    assert public["has_credentials"] is True
    assert (await _cloud(api, "private"))["has_credentials"] is False


async def test_zones_capacity_blocks_and_abilities_are_shown(api: Api) -> None:
    private = await _cloud(api, "private")
    assert private["zones"] is None  # no worker has asked the cloud yet
    assert private["capacity_blocks"] == []
    assert all(a == {"available": True, "reason": None} for a in private["abilities"].values())
    assert set(private["abilities"]) == {
        "stop_start",
        "reboot",
        "keypairs",
        "changes_since",
        "hosts",
        "exact_flavors",
    }

    sim = api.plane.sim("private")
    sim.settings.zones = ["a", "b"]
    await api.plane.worker.sync.sync_cloud("private", force=True)
    private = await _cloud(api, "private")
    assert private["zones"] == ["a", "b"] and private["zones_updated_at"] is not None
    # A capacity error in zone a blocks that zone for that flavor (as provisioning does).
    now = api.plane.clock.now()
    async with api.plane.db.session() as s:
        flavor = (await s.execute(select(Flavor).where(Flavor.name == "m1.small"))).scalar_one()
        await block(
            s,
            cloud="private",
            zone="a",
            flavor_id=flavor.id,
            until=now + timedelta(seconds=60),
            reason="capacity error: no valid host in zone 'a'",
        )
    blocks = (await _cloud(api, "private"))["capacity_blocks"]
    assert [(b["zone"], b["flavor"]) for b in blocks] == [("a", "m1.small")]
    assert "zone 'a'" in blocks[0]["reason"]
    assert not (await _cloud(api, "private"))["blocklisted"]  # the cloud itself is not
    listed = (await api.client.get("/canopy/v1/clouds")).json()["items"]
    assert [c["capacity_blocks"] for c in listed if c["name"] == "private"] == [blocks]
    # It runs out by itself.
    api.plane.clock.advance(61)
    assert (await _cloud(api, "private"))["capacity_blocks"] == []
