"""Cascading: a parent canopy with a child canopy as its `openstack` cloud.

The child is a real `canopy up` (two fast sim clouds); the parent is another, whose only
cloud `site-b` is the child, reached with the password entry of the clouds.yaml the child
wrote. A server booted through the parent's OpenStack API with the `openstack` CLI lands
in the child, which keeps its own id and shows the parent's in the server's metadata.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.interop.conftest import BIN, CanopyServer, start_canopy

CIRROS = "6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01"  # the child's default image


def parent_config(child: CanopyServer) -> str:
    return f"""
[controllers]
poll_seconds = 0.05
sync_seconds = 0.3

[[clouds]]
name = "site-b"
driver = "openstack"
tier = 0
[clouds.openstack]
cloud = "canopy"
clouds_yaml = "{child.clouds_yaml}"
schedule_poll_seconds = 0.1

[[images]]
name = "cirros"
id = "{CIRROS}"
[images.map]
site-b = "{CIRROS}"
"""


def boot_tiny(server: CanopyServer, *args: str) -> Any:
    """`openstack server create` of a cirros m1.tiny with no network; `args` end with the
    name (options before it, e.g. "--wait")."""
    return server.openstack(
        "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--nic", "none", *args
    )


def until_status(server: CanopyServer, sid: str, status: str) -> None:
    """Poll a canopy (a real process: no fake clock to step) through openstacksdk."""
    conn = server.sdk()
    seen = None
    for _ in range(600):
        seen = conn.compute.get_server(sid)
        if seen.status == status and not seen.task_state:
            return
        time.sleep(0.1)
    raise AssertionError(f"{sid} never reached {status}: {seen and seen.status}\n{server.log()}")


@pytest.fixture(scope="module")
def parent(
    canopy_server: CanopyServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CanopyServer]:
    server = start_canopy(
        tmp_path_factory.mktemp("parent"), extra_toml=parent_config(canopy_server)
    )
    try:
        yield server
    finally:
        server.stop()


def test_a_server_booted_through_the_parent_lives_in_the_child(
    parent: CanopyServer, canopy_server: CanopyServer
) -> None:
    child = canopy_server
    zones = parent.openstack("availability", "zone", "list", "--compute")
    assert [z["Zone Name"] for z in zones] == ["site-b"]

    made = boot_tiny(parent, "--wait", "web")
    assert made["status"] == "ACTIVE", made
    parent_id = made["id"]
    # The child has it under its own id, named for the parent's, with the parent's id and
    # the parent installation's tag (another canopy on the same child leaves it alone).
    in_child = child.sdk().compute
    [listed] = list(in_child.servers(name=parent_id))
    assert listed.id != parent_id
    assert set(listed.metadata) == {"canopy_id", "canopy_installation"}
    assert listed.metadata["canopy_id"] == parent_id and listed.status == "ACTIVE"

    parent.openstack("server", "stop", parent_id, json_output=False)
    until_status(parent, parent_id, "SHUTOFF")
    assert in_child.get_server(listed.id).status == "SHUTOFF"
    parent.openstack("server", "start", parent_id, json_output=False)
    until_status(parent, parent_id, "ACTIVE")
    parent.openstack("server", "delete", "--wait", parent_id, json_output=False)
    assert list(in_child.servers(name=parent_id)) == []


PUBLIC_SIM = """
[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 10
boot_seconds = 0.3
api_latency_ms = 5
price_per_vcpu_hour = 0.048
"""


def restart(server: CanopyServer) -> None:
    """Start a killed `canopy up` again on its own config (same port, same data)."""
    config = server.data_dir.parent / "canopy.toml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANOPY_", "OS_"))}
    env["CANOPY_ADMIN_PASSWORD"] = server.admin_password
    log = server.log_path.open("ab")
    server.process = subprocess.Popen(
        [str(BIN / "canopy"), "up", "--config", str(config), "--log-level", "WARNING"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=server.data_dir.parent,
    )
    server._log_file = log
    for _ in range(600):
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.base_url}/healthz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"the child did not come back:\n{server.log()[-3000:]}")


def zone_available(parent: CanopyServer, zone: str) -> bool:
    zones = parent.sdk().compute.availability_zones()
    return any(z.name == zone and z.state.get("available") for z in zones)


def until(check: Callable[[], bool], what: str, tries: int = 600) -> None:
    for _ in range(tries):
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"never: {what}")


SLOW_CHILD = """
[controllers]
poll_seconds = 0.05
sync_seconds = 0.3

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
host_ram_mb = 32768
boot_seconds = 30
api_latency_ms = 5
"""
# The child's boots outlast three `openstack server create` calls and the wait for them to
# reach the child on a loaded machine (with 6 s, under two test workers, a server could end
# its boot before the kill: the test's "still booting" check failed); the sim's boots end
# by the clock, so after the child's restart they finish where they would have.


@pytest.mark.slow
def test_a_child_killed_while_servers_build_is_an_unavailable_zone_until_it_comes_back(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """kill -9 the child while three servers build in it (6 s boots): the parent shows its
    zone as not available within seconds and places a new server elsewhere; the child comes
    back, and the parent converges: the three reach ACTIVE where they were, once each."""
    child = start_canopy(tmp_path_factory.mktemp("child"), extra_toml=SLOW_CHILD)
    parent: CanopyServer | None = None
    try:
        parent = start_canopy(
            tmp_path_factory.mktemp("parent"), extra_toml=parent_config(child) + PUBLIC_SIM
        )
        building = [boot_tiny(parent, f"web-{i}")["id"] for i in range(3)]
        in_child = child.sdk().compute

        def all_sent() -> bool:
            return sorted(s.metadata.get("canopy_id") for s in in_child.servers()) == sorted(
                building
            )

        until(all_sent, "the three creates reached the child")
        time.sleep(0.5)  # the parent records the child's answers
        conn = parent.sdk().compute
        assert {conn.get_server(sid).status for sid in building} == {"BUILD"}  # still booting

        child.process.kill()  # kill -9: no goodbye to anyone
        child.process.wait()
        killed = time.monotonic()
        until(lambda: not zone_available(parent, "site-b"), "site-b unavailable")
        noticed = time.monotonic() - killed
        assert noticed < 10, f"the parent took {noticed:.1f} s to see its child gone"
        second = boot_tiny(parent, "--wait", "second")
        assert second["status"] == "ACTIVE"
        assert second["OS-EXT-AZ:availability_zone"] == "public"
        assert {conn.get_server(sid).status for sid in building} == {"BUILD"}  # waiting

        restart(child)
        until(lambda: zone_available(parent, "site-b"), "site-b available again")
        for sid in building:
            until_status(parent, sid, "ACTIVE")
            assert conn.get_server(sid).availability_zone == "site-b"
        # Converged: each of the three is in the child once, and nothing else was made.
        in_child = child.sdk().compute
        held = [s.metadata.get("canopy_id") for s in in_child.servers()]
        assert sorted(held) == sorted(building)
        assert {s.status for s in in_child.servers()} == {"ACTIVE"}
    finally:
        if parent is not None:
            parent.stop()
        child.stop()
