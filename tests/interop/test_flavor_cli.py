"""Flavor management through the real `openstack` CLI, and the openstack driver's managed
flavors (`manage_flavors = true`) with a `canopy up` child as the cloud: canopy's flavors
made in the child, private, on first use, with canopy's extra specs, and healed when
canopy's size or extra specs change."""

from __future__ import annotations

import asyncio
import uuid

from canopy.domain.clock import SystemClock
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import RemoteState
from canopy.providers.base import sized_by_request
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.managed_flavors import sized_name
from canopy.providers.openstack.options import OpenStackOptions

from .app_creds import member_of
from .conftest import CanopyServer
from .test_openstack_driver_on_canopy import CIRROS, until

ODD = Resources(vcpus=1, ram_mb=768, disk_gb=3)  # none of the child's flavors has this size


def test_flavor_create_set_share_and_delete(canopy_server: CanopyServer) -> None:
    child = canopy_server
    osc = child.openstack
    member_of(child, "fay", "fay-pw", "flavor-users", "member")
    member_of(child, "gus", "gus-pw", "flavor-others", "member")
    fay = child.env(username="fay", password="fay-pw", project="flavor-users")
    gus = child.env(username="gus", password="gus-pw", project="flavor-others")

    made = osc(
        "flavor", "create", "--ram", "1024", "--vcpus", "2", "--disk", "10",
        "--ephemeral", "5", "--swap", "256", "--private", "--description", "two cores",
        "--property", "hw:cpu_policy=dedicated", "--project", "flavor-users", "c1.cli",
    )  # fmt: skip
    assert made["name"] == "c1.cli" and made["os-flavor-access:is_public"] is False
    assert (made["ram"], made["vcpus"], made["disk"]) == (1024, 2, 10)
    assert made["properties"] == {"hw:cpu_policy": "dedicated"}
    fid = made["id"]

    # Shared with fay's project: she sees it and may boot it; gus's project does not.
    assert "c1.cli" in {f["Name"] for f in osc("flavor", "list", "--all", env=fay)}
    assert "c1.cli" not in {f["Name"] for f in osc("flavor", "list", "--all", env=gus)}
    _, err = child.openstack_fail("flavor", "show", fid, env=gus)
    assert "No Flavor found" in err or "could not be found" in err
    shown = osc("flavor", "show", fid, env=fay)
    assert shown["description"] == "two cores" and shown["swap"] == 256

    # A member may not make flavors: Nova's 403.
    _, err = child.openstack_fail(
        "flavor", "create", "--ram", "64", "--vcpus", "1", "--disk", "0", "nope", env=fay
    )
    assert "os_compute_api:os-flavor-manage:create" in err and "403" in err

    osc("flavor", "set", "--property", "quota:cpu_shares=2048", fid, json_output=False)
    osc("flavor", "unset", "--property", "hw:cpu_policy", fid, json_output=False)
    osc("flavor", "set", "--project", "flavor-others", fid, json_output=False)
    osc("flavor", "unset", "--project", "flavor-users", fid, json_output=False)
    shown = osc("flavor", "show", fid)
    assert shown["properties"] == {"quota:cpu_shares": "2048"}
    assert "c1.cli" in {f["Name"] for f in osc("flavor", "list", "--all", env=gus)}
    assert "c1.cli" not in {f["Name"] for f in osc("flavor", "list", "--all", env=fay)}

    osc("flavor", "delete", fid, json_output=False)
    assert "c1.cli" not in {f["Name"] for f in osc("flavor", "list", "--all")}
    again = osc("flavor", "create", "--ram", "64", "--vcpus", "1", "--disk", "0", "c1.cli")
    assert again["os-flavor-access:is_public"] is True
    osc("flavor", "delete", again["id"], json_output=False)


def _driver(child: CanopyServer, prefix: str) -> OpenStackCompute:
    options = OpenStackOptions(
        cloud="canopy",
        clouds_yaml=str(child.clouds_yaml),
        schedule_poll_seconds=0.1,
        use_hypervisor_stats=False,
        manage_flavors=True,
        managed_flavor_prefix=prefix,
    )
    return OpenStackCompute("child", options, SystemClock())


def _spec(size: Resources, extra_specs: dict[str, str] | None = None) -> ServerSpec:
    return ServerSpec(
        canopy_id=str(uuid.uuid4()),
        name="vm",
        flavor_name="odd",
        resources=size,
        remote_flavor=None,
        remote_image=CIRROS,
        extra_specs=dict(extra_specs or {}),
    )


async def test_managed_flavors_in_a_child_canopy(canopy_server: CanopyServer) -> None:
    child = canopy_server
    prefix = f"c{uuid.uuid4().hex[:6]}-"
    driver = _driver(child, prefix)

    async def boot(d: OpenStackCompute, size: Resources) -> str:
        """Boot one server of canopy's flavor "odd" at `size` in the child, delete it;
        the child flavor it was booted as."""
        made = await d.create(_spec(size))
        await until(d, made.remote_id, RemoteState.RUNNING)
        shown = child.openstack("server", "show", made.remote_id)
        await d.delete(made.remote_id)
        await until(d, made.remote_id, None)
        return str(shown["flavor"]["original_name"])

    def child_flavors() -> dict[str, dict[str, object]]:
        listed = child.openstack("flavor", "list", "--all", "--long")
        return {str(f["Name"]): f for f in listed}

    try:
        assert driver.takes_any_size and sized_by_request(driver) is driver
        # First use: the child makes a private flavor of exactly canopy's size, maps it
        # by its next inventory (the create asked for one) and places the server.
        assert await asyncio.wait_for(boot(driver, ODD), 60) == f"{prefix}odd"
        made = child_flavors()[f"{prefix}odd"]
        assert (made["VCPUs"], made["RAM"], made["Disk"]) == (1, 768, 3)
        assert made["Is Public"] is False
        before = len(child_flavors())
        assert await asyncio.wait_for(boot(driver, ODD), 60) == f"{prefix}odd"
        assert len(child_flavors()) == before

        # Canopy's "odd" grew: a new one of the new size; the old one stays.
        bigger = Resources(vcpus=1, ram_mb=1024, disk_gb=3)
        assert await asyncio.wait_for(boot(driver, bigger), 60) == f"{prefix}odd-1-1024-3"
        assert len(child_flavors()) == before + 1
        # Another driver (a second worker, a restart) finds it instead of making more.
        other = _driver(child, prefix)
        try:
            assert await asyncio.wait_for(boot(other, bigger), 60) == f"{prefix}odd-1-1024-3"
        finally:
            await other.close()
        assert len(child_flavors()) == before + 1
    finally:
        await driver.close()


async def test_managed_flavor_extra_specs_in_a_child_canopy(canopy_server: CanopyServer) -> None:
    child = canopy_server
    prefix = f"c{uuid.uuid4().hex[:6]}-"
    driver = _driver(child, prefix)
    pinned = {"hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "isolate"}
    shared = {"hw:cpu_policy": "shared"}

    async def boot(specs: dict[str, str]) -> dict[str, object]:
        """Boot one server of canopy's flavor "odd" with `specs` in the child, delete it;
        the child's flavor it was booted as, as `openstack flavor show` shows it."""
        made = await driver.create(_spec(ODD, specs))
        await until(driver, made.remote_id, RemoteState.RUNNING)
        shown = child.openstack("server", "show", made.remote_id)
        await driver.delete(made.remote_id)
        await until(driver, made.remote_id, None)
        name = str(shown["flavor"]["original_name"])
        [fid] = [f["ID"] for f in child.openstack("flavor", "list", "--all") if f["Name"] == name]
        flavor: dict[str, object] = child.openstack("flavor", "show", fid)
        return flavor

    try:
        # First use: the child's flavor carries canopy's extra specs.
        first = await asyncio.wait_for(boot(pinned), 60)
        assert first["name"] == f"{prefix}odd" and first["properties"] == pinned
        assert (first["vcpus"], first["ram"], first["disk"]) == (1, 768, 3)
        # Other specs at the same size: another child flavor, named for its specs.
        second = await asyncio.wait_for(boot(shared), 60)
        assert second["name"] == sized_name(prefix, "odd", ODD, shared)
        assert str(second["name"]).startswith(f"{prefix}odd-1-768-3-")
        assert second["properties"] == shared and second["id"] != first["id"]
        # Each is found again by its specs; the first kept its own.
        assert await asyncio.wait_for(boot(pinned), 60) == first
        names = {f["Name"] for f in child.openstack("flavor", "list", "--all")}
        assert {n for n in names if str(n).startswith(prefix)} == {first["name"], second["name"]}
    finally:
        await driver.close()
