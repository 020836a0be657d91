"""The openstack driver's password path, against canopy's own Keystone and Nova API.

This is the start of cascading: canopy as a cloud of canopy. The child is a real `canopy
up` process; the driver (in this process, as a parent canopy would run it) signs in with
the clouds.yaml the child wrote (password, Keystone v3, the catalog's compute endpoint).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from canopy.domain.clock import SystemClock
from canopy.domain.errors import CloudAuthError
from canopy.domain.specs import RemoteServer, Resources, ServerSpec
from canopy.domain.states import PowerAction, RemoteState
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.options import OpenStackOptions
from tests.interop.app_creds import app_cred_clouds_yaml, member_of
from tests.interop.conftest import CanopyServer

CIRROS = "6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01"  # the child's default image


def driver_on(child: CanopyServer, clouds_yaml: Path | None = None) -> OpenStackCompute:
    options = OpenStackOptions(
        cloud="canopy",
        clouds_yaml=str(clouds_yaml or child.clouds_yaml),
        schedule_poll_seconds=0.1,
        use_hypervisor_stats=False,
    )
    return OpenStackCompute("child", options, SystemClock())


async def until(driver: OpenStackCompute, rid: str, state: RemoteState | None) -> None:
    """Poll the child (its own process and clock) until the server is in `state`."""
    seen: RemoteServer | None = None
    for _ in range(300):
        seen = await driver.get(rid)
        if (seen is None and state is None) or (seen is not None and seen.state == state):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"server {rid} never reached {state}; last seen {seen}")


async def test_a_server_through_the_childs_keystone(canopy_server: CanopyServer) -> None:
    child = canopy_server
    driver = driver_on(child)
    try:
        assert set(await driver.zones()) == {"private", "public"}
        offered = {o.name for o in await driver.offerings()}
        assert {"m1.tiny", "m1.small"} <= offered
        cap = await driver.capacity()
        assert cap.instances_total is not None and cap.instances_free == cap.instances_total

        parent_id = str(uuid.uuid4())
        spec = ServerSpec(
            canopy_id=parent_id,
            name="web",
            flavor_name="m1.tiny",
            resources=Resources(vcpus=1, ram_mb=512, disk_gb=1),
            remote_flavor=None,
            remote_image=CIRROS,
            zone="private",
            metadata={"role": "web"},
        )
        created = await driver.create(spec)
        assert (await driver.create(spec)).remote_id == created.remote_id  # found, not made
        rid = created.remote_id
        await until(driver, rid, RemoteState.RUNNING)

        # The child keeps its own id and shows the parent's in the server's metadata.
        shown = child.openstack("server", "show", rid)
        assert shown["id"] == rid and shown["OS-EXT-AZ:availability_zone"] == "private"
        assert shown["properties"] == {"role": "web", "canopy_id": parent_id}
        assert len(child.openstack("server", "list", "--name", parent_id)) == 1
        after = await driver.capacity()
        assert after.instances_free == (cap.instances_free or 0) - 1

        await driver.power(rid, PowerAction.STOP)
        await until(driver, rid, RemoteState.STOPPED)
        await driver.power(rid, PowerAction.START)
        await until(driver, rid, RemoteState.RUNNING)

        mark = datetime.now(UTC)
        await driver.delete(rid)
        await until(driver, rid, None)
        await driver.delete(rid)  # gone already: success
        gone = {r.remote_id: r for r in await driver.list(mark)}
        assert gone[rid].state == RemoteState.DELETED and gone[rid].canopy_id == parent_id
    finally:
        await driver.close()


async def test_refused_credentials_are_an_auth_error(
    canopy_server: CanopyServer, tmp_path: Path
) -> None:
    wrong = tmp_path / "clouds.yaml"
    shutil.copy(canopy_server.clouds_yaml, wrong)
    text = wrong.read_text()
    wrong.write_text(text.replace(canopy_server.admin_password, "not-the-password"))
    driver = driver_on(canopy_server, wrong)
    try:
        with pytest.raises(CloudAuthError) as caught:
            await driver.capacity()
        assert caught.value.cloud == "child"
        assert "not-the-password" not in str(caught.value)
    finally:
        await driver.close()


async def test_an_application_credential_made_in_the_child(
    canopy_server: CanopyServer, tmp_path: Path
) -> None:
    """The driver signs in with a clouds.yaml entry of `auth_type: v3applicationcredential`
    (a member's, on a project of the child's): the server lands in that project."""
    child = canopy_server
    member_of(child, "svc", "svc-pw", "site", "member")
    yaml = app_cred_clouds_yaml(
        child, tmp_path / "clouds.yaml", user="svc", password="svc-pw", project="site", name="p"
    )
    assert "svc-pw" not in yaml.read_text()
    driver = driver_on(child, yaml)
    try:
        parent_id = str(uuid.uuid4())
        spec = ServerSpec(
            canopy_id=parent_id,
            name="app",
            flavor_name="m1.tiny",
            resources=Resources(vcpus=1, ram_mb=512, disk_gb=1),
            remote_flavor=None,
            remote_image=CIRROS,
            zone="private",
        )
        created = await driver.create(spec)
        await until(driver, created.remote_id, RemoteState.RUNNING)
        shown = child.openstack("server", "show", created.remote_id)
        assert shown["project_id"] == child.openstack("project", "show", "site")["id"]
        await driver.delete(created.remote_id)
        await until(driver, created.remote_id, None)
        # Deleted in the child, the credential no longer opens it: the cloud is unhealthy.
        as_svc = ("--os-username", "svc", "--os-password", "svc-pw", "--os-project-name", "site")
        child.openstack(*as_svc, "application", "credential", "delete", "p", json_output=False)
    finally:
        await driver.close()
    after = driver_on(child, yaml)
    try:
        with pytest.raises(CloudAuthError):
            await after.capacity()
    finally:
        await after.close()
