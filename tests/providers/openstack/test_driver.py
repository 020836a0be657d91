"""The openstack driver against a genuine Nova (nova 34, its functional harness)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from canopy.domain.errors import AlreadyExists, CapacityError, CloudError
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import PowerAction, RemoteState
from canopy.providers.openstack.driver import OpenStackCompute
from tests.interop.nova.harness import RealNova
from tests.providers.openstack.conftest import in_state, wait_for

SMALL = Resources(vcpus=1, ram_mb=2048, disk_gb=20)
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHlnvLy4YZ9tt3Xb0b1qg1y0Qd0V4Fz8P3i6v2Wm2dqS test"


def spec(nova: RealNova, **kw: object) -> ServerSpec:
    base: dict[str, object] = {
        "canopy_id": str(uuid.uuid4()),
        "name": "vm",
        "flavor_name": "m1.small",
        "resources": SMALL,
        "remote_flavor": None,
        "remote_image": nova.image,
    }
    base.update(kw)
    return ServerSpec(**base)  # type: ignore[arg-type]


def servers_named(nova: RealNova, marker: str) -> list[dict[str, object]]:
    """What Nova itself lists (an operator's view), live servers whose name has `marker`."""
    with nova.http() as http:
        r = http.get("/servers/detail", params={"name": marker})
        assert r.status_code == 200, r.text
        return list(r.json()["servers"])


async def test_life_cycle(driver: OpenStackCompute, real_nova: RealNova) -> None:
    s = spec(real_nova, metadata={"role": "web"})
    created = await driver.create(s)
    assert created.canopy_id == s.canopy_id
    assert created.name.endswith(s.canopy_id) and created.zone == "nova"
    rid = created.remote_id
    await wait_for(lambda: driver.get(rid), in_state(RemoteState.RUNNING))
    [raw] = servers_named(real_nova, s.canopy_id)
    assert raw["metadata"] == {"role": "web", "canopy_id": s.canopy_id}
    assert raw["flavor"]["original_name"] == "m1.small"  # type: ignore[index]

    await driver.power(rid, PowerAction.STOP)
    await wait_for(lambda: driver.get(rid), in_state(RemoteState.STOPPED))
    await driver.power(rid, PowerAction.STOP)  # already stopped: Nova's 409 is success
    await driver.power(rid, PowerAction.START)
    await wait_for(lambda: driver.get(rid), in_state(RemoteState.RUNNING))
    await driver.power(rid, PowerAction.REBOOT_SOFT)
    await wait_for(lambda: driver.get(rid), in_state(RemoteState.RUNNING))

    await driver.delete(rid)
    await wait_for(lambda: driver.get(rid), lambda r: r is None)
    await driver.delete(rid)  # Nova's 404: already gone is success
    assert servers_named(real_nova, s.canopy_id) == []


async def test_a_retried_create_finds_the_server_instead_of_making_a_second(
    driver: OpenStackCompute, real_nova: RealNova
) -> None:
    s = spec(real_nova)
    first = await driver.create(s)
    again = await driver.create(s)
    assert again.remote_id == first.remote_id
    assert [x["id"] for x in servers_named(real_nova, s.canopy_id)] == [first.remote_id]
    found = await driver.find(s.canopy_id)
    assert found is not None and found.remote_id == first.remote_id
    await driver.delete(first.remote_id)


async def test_changes_since_shows_a_server_deleted_directly_in_nova(
    driver: OpenStackCompute, real_nova: RealNova
) -> None:
    s = spec(real_nova)
    created = await driver.create(s)
    await wait_for(lambda: driver.get(created.remote_id), in_state(RemoteState.RUNNING))
    assert created.remote_id in {r.remote_id for r in await driver.list()}
    mark = datetime.now(UTC)
    with real_nova.http() as http:  # the operator, behind canopy's back
        assert http.delete(f"/servers/{created.remote_id}").status_code == 204
    await wait_for(lambda: driver.get(created.remote_id), lambda r: r is None)

    changed = {r.remote_id: r for r in await driver.list(mark)}
    gone = changed[created.remote_id]
    # Nova no longer shows a deleted server's metadata: the id comes from its name.
    assert gone.state == RemoteState.DELETED and gone.canopy_id == s.canopy_id
    assert created.remote_id not in {r.remote_id for r in await driver.list()}


async def test_the_overlap_window_lists_a_change_made_just_before_the_mark(
    make_driver: Callable[..., OpenStackCompute], real_nova: RealNova
) -> None:
    """Sync's mark is when its last pass began; a change Nova recorded a little before it
    (clocks, a pass that began while Nova wrote) is still asked for, by the overlap."""
    wide = make_driver(changes_since_overlap_seconds=60)
    tight = make_driver(changes_since_overlap_seconds=0)
    s = spec(real_nova)
    created = await wide.create(s)
    await wait_for(lambda: wide.get(created.remote_id), in_state(RemoteState.RUNNING))
    mark = datetime.now(UTC) + timedelta(seconds=2)  # after the server's last change
    assert created.remote_id in {r.remote_id for r in await wide.list(mark)}
    assert created.remote_id not in {r.remote_id for r in await tight.list(mark)}
    await wide.delete(created.remote_id)
    await wait_for(lambda: wide.get(created.remote_id), lambda r: r is None)


async def test_servers_canopy_did_not_tag_are_not_listed(
    driver: OpenStackCompute, real_nova: RealNova
) -> None:
    with real_nova.http() as http:
        body = {
            "server": {
                "name": "operators-own",
                "imageRef": real_nova.image,
                "flavorRef": "1",
                "networks": "none",
            }
        }
        r = http.post("/servers", json=body)
        assert r.status_code == 202, r.text
        rid = r.json()["server"]["id"]
    try:
        assert rid not in {x.remote_id for x in await driver.list()}
        assert rid not in {x.remote_id for x in await driver.list(datetime(2000, 1, 1, tzinfo=UTC))}
    finally:
        await driver.delete(rid)


async def test_flavors_by_map_and_by_nearest_fit(
    make_driver: Callable[..., OpenStackCompute], real_nova: RealNova
) -> None:
    driver = make_driver(flavor_map={"m1.small": "m1.medium"})
    offered = {o.name: o for o in await driver.offerings()}
    assert offered["m1.medium"].vcpus == 2 and offered["m1.medium"].ram_mb == 4096
    mapped = await driver.create(spec(real_nova))
    assert mapped.flavor == "m1.medium"
    await driver.delete(mapped.remote_id)  # the fake compute node has room for one
    # Not in the map: the smallest flavor with room for 2 vcpus and 3000 MB.
    fitted = await driver.create(
        spec(real_nova, flavor_name="odd", resources=Resources(vcpus=2, ram_mb=3000, disk_gb=5))
    )
    assert fitted.flavor == "m1.medium"
    with pytest.raises(CapacityError, match="no flavor fits"):
        await driver.create(spec(real_nova, flavor_name="vast", resources=Resources(999, 1, 1)))
    with pytest.raises(CloudError, match="does not exist"):
        await driver.create(spec(real_nova, remote_flavor="no-such-flavor"))
    await driver.delete(fitted.remote_id)


async def test_no_valid_host_is_a_capacity_error_and_leaves_nothing(
    driver: OpenStackCompute, real_nova: RealNova
) -> None:
    # The harness's fake compute node has 1028 GB of disk, and disk is not a quota: a
    # flavor with more goes through the API and the scheduler finds no host for it.
    name = f"huge-{uuid.uuid4().hex[:6]}"
    with real_nova.http() as http:
        r = http.post(
            "/flavors", json={"flavor": {"name": name, "vcpus": 1, "ram": 512, "disk": 4000}}
        )
        assert r.status_code == 200, r.text
    s = spec(real_nova, remote_flavor=name, zone="nova")
    with pytest.raises(CapacityError, match="No valid host was found") as caught:
        await driver.create(s)
    assert caught.value.cloud == "child" and caught.value.zone == "nova"
    assert servers_named(real_nova, s.canopy_id) == []


async def test_capacity_is_the_quota_headroom_from_limits(
    make_driver: Callable[..., OpenStackCompute], real_nova: RealNova
) -> None:
    driver = make_driver(use_hypervisor_stats=False)
    with real_nova.http() as http:
        absolute = http.get("/limits").json()["limits"]["absolute"]
    before = await driver.capacity()
    assert before.vcpus_total == absolute["maxTotalCores"]
    assert before.instances_total == absolute["maxTotalInstances"]
    assert before.ram_mb_total == absolute["maxTotalRAMSize"]
    assert before.vcpus_free == absolute["maxTotalCores"] - absolute["totalCoresUsed"]
    created = await driver.create(spec(real_nova))
    after = await driver.capacity()
    assert after.vcpus_free == (before.vcpus_free or 0) - 1
    assert after.ram_mb_free == (before.ram_mb_free or 0) - 2048
    assert after.instances_free == (before.instances_free or 0) - 1
    await driver.delete(created.remote_id)


async def test_capacity_with_admin_credentials_is_bounded_by_the_hypervisors(
    driver: OpenStackCompute, real_nova: RealNova
) -> None:
    with real_nova.http() as http:
        r = http.get("/os-hypervisors/statistics", headers={"OpenStack-API-Version": "compute 2.1"})
        stats = r.json()["hypervisor_statistics"]
    cap = await driver.capacity()
    assert cap.vcpus_total is not None and cap.vcpus_total <= stats["vcpus"]
    assert cap.ram_mb_total is not None and cap.ram_mb_total <= stats["memory_mb"]


async def test_zones_are_the_childs_availability_zones(
    make_driver: Callable[..., OpenStackCompute],
) -> None:
    assert await make_driver().zones() == ["nova"]
    assert await make_driver(zones=["elsewhere"]).zones() == []


async def test_a_keypair_is_imported_once(driver: OpenStackCompute, real_nova: RealNova) -> None:
    name = f"canopy-test-{uuid.uuid4().hex[:8]}"
    await driver.import_keypair(name, PUBLIC_KEY)
    with pytest.raises(AlreadyExists):
        await driver.import_keypair(name, PUBLIC_KEY)
    s = spec(real_nova, key_name=name)
    created = await driver.create(s)
    [raw] = servers_named(real_nova, s.canopy_id)
    assert raw["key_name"] == name
    await driver.delete(created.remote_id)


async def test_a_listing_in_pages_of_one_shows_each_server_once(
    driver: OpenStackCompute, real_nova: RealNova
) -> None:
    """Nova's limit and marker, page after page; with changes-since too (deleted ones
    included), each page's marker carrying Nova's and when the listing began."""
    mark = datetime.now(UTC) - timedelta(seconds=5)
    made = [await driver.create(spec(real_nova, name=f"paged-{n}")) for n in range(3)]
    try:
        for r in made:
            await wait_for(lambda r=r: driver.get(r.remote_id), in_state(RemoteState.RUNNING))
        await driver.delete(made[0].remote_id)
        await wait_for(lambda: driver.get(made[0].remote_id), lambda r: r is None)
        for since in (None, mark):
            seen: list[str] = []
            markers: list[str] = []
            marker: str | None = None
            while True:
                page = await driver.list_page(since, marker, 1)
                assert len(page.servers) <= 1
                seen += [r.remote_id for r in page.servers]
                if page.next is None:
                    break
                marker = page.next
                markers.append(marker)
            assert len(seen) == len(set(seen))  # one page each
            assert set(seen) == {r.remote_id for r in await driver.list(since)}
            live = {r.remote_id for r in made[1:]}
            if since is None:
                assert live <= set(seen) and made[0].remote_id not in seen
                assert all(" " not in m for m in markers)
            else:  # the deleted one too, as DELETED
                assert {r.remote_id for r in made} <= set(seen)
                assert len({m.split(" ", 1)[1] for m in markers}) == 1  # asked at, once
    finally:
        for r in made[1:]:
            await driver.delete(r.remote_id)
