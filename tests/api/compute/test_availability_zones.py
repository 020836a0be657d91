"""GET /os-availability-zone(/detail): one zone per enabled cloud."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from canopy.store.models import Cloud
from tests.api.compute.helpers import V21, who
from tests.api.conftest import Api


async def test_each_cloud_is_a_zone(api: Api) -> None:
    w = await who(api)
    for path in ("/os-availability-zone", "/os-availability-zone/detail"):
        r = await api.client.get(V21 + path, headers=w.h())
        assert r.status_code == 200
        assert r.json() == {
            "availabilityZoneInfo": [
                {"zoneName": "private", "zoneState": {"available": True}, "hosts": None},
                {"zoneName": "public", "zoneState": {"available": True}, "hosts": None},
            ]
        }


async def test_availability_follows_health_blocklist_and_enabled(api: Api) -> None:
    w = await who(api)
    until = api.plane.clock.now() + timedelta(seconds=60)
    async with api.plane.db.session() as s:
        await s.execute(update(Cloud).where(Cloud.name == "public").values(blocklisted_until=until))
    r = await api.client.get(f"{V21}/os-availability-zone", headers=w.h())
    zones = {z["zoneName"]: z["zoneState"]["available"] for z in r.json()["availabilityZoneInfo"]}
    assert zones == {"private": True, "public": False}
    api.plane.clock.advance(61)
    async with api.plane.db.session() as s:
        await s.execute(update(Cloud).where(Cloud.name == "private").values(healthy=False))
    r = await api.client.get(f"{V21}/os-availability-zone", headers=w.h())
    zones = {z["zoneName"]: z["zoneState"]["available"] for z in r.json()["availabilityZoneInfo"]}
    assert zones == {"private": False, "public": True}
    async with api.plane.db.session() as s:
        await s.execute(update(Cloud).where(Cloud.name == "private").values(enabled=False))
    r = await api.client.get(f"{V21}/os-availability-zone", headers=w.h())
    assert [z["zoneName"] for z in r.json()["availabilityZoneInfo"]] == ["public"]


async def test_admin_detail_has_a_host_per_cloud(api: Api) -> None:
    admin = await who(api, role="admin", project="admin")
    r = await api.client.get(f"{V21}/os-availability-zone/detail", headers=admin.h())
    [private, public] = r.json()["availabilityZoneInfo"]
    assert private["zoneName"] == "private"
    service = private["hosts"]["private"]["nova-compute"]
    assert service["available"] is True and service["active"] is True
    assert set(public["hosts"]) == {"public"}


async def test_a_cloud_that_refuses_canopys_credentials_is_not_available(api: Api) -> None:
    w = await who(api)
    sim = api.plane.sim("public")
    sim.settings.refuse_credentials = True
    await api.plane.worker.sync.sync_cloud("public", force=True)
    r = await api.client.get(f"{V21}/os-availability-zone", headers=w.h())
    zones = {z["zoneName"]: z["zoneState"]["available"] for z in r.json()["availabilityZoneInfo"]}
    assert zones == {"private": True, "public": False}
    sim.settings.refuse_credentials = False
    await api.plane.worker.sync.sync_cloud("public", force=True)
    r = await api.client.get(f"{V21}/os-availability-zone", headers=w.h())
    zones = {z["zoneName"]: z["zoneState"]["available"] for z in r.json()["availabilityZoneInfo"]}
    assert zones == {"private": True, "public": True}
