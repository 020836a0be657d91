"""Glance through the real `openstack` CLI and openstacksdk against a real `canopy up`."""

from __future__ import annotations

import uuid

import httpx

from .conftest import CanopyServer

CIRROS = "6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01"


def test_image_list_and_show(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    images = {i["Name"]: i for i in osc("image", "list")}
    assert {"cirros", "ubuntu-24.04"} <= set(images)
    assert images["cirros"]["ID"] == CIRROS and images["cirros"]["Status"] == "active"

    by_name = osc("image", "show", "cirros")  # GET /images/cirros (404), then ?name=cirros
    assert by_name["id"] == CIRROS and by_name["status"] == "active"
    assert by_name["visibility"] == "public" and by_name["disk_format"] == "qcow2"
    by_id = osc("image", "show", CIRROS)
    assert by_id["name"] == "cirros"
    # The admin sees where canopy can boot it (every sim cloud, by canopy's id).
    clouds = {loc["cloud"] for loc in by_id["properties"]["canopy_locations"]}
    assert clouds == {"private", "public"}

    rc, err = canopy_server.openstack_fail("image", "show", "no-such-image")
    assert rc == 1 and "no-such-image" in err

    assert [i["Name"] for i in osc("image", "list", "--name", "ubuntu-24.04")] == ["ubuntu-24.04"]
    assert osc("image", "list", "--private") == []


def test_server_create_finds_the_image_by_name(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    server = osc("server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--wait", "img-vm")
    try:
        assert server["status"] == "ACTIVE"
        assert CIRROS in server["image"]
        listed = osc("server", "list", "--name", "^img-vm$")
        assert [s["Image"] for s in listed] == ["cirros"]  # named through GET ?id=in:...
    finally:
        osc("server", "delete", "--wait", server["id"], json_output=False)


def test_images_registered_through_the_admin_api(canopy_server: CanopyServer) -> None:
    token = canopy_server.token()
    names = [f"interop-{n:02d}-{uuid.uuid4().hex[:4]}" for n in range(30)]
    for name in names:
        r = httpx.post(
            f"{canopy_server.base_url}/canopy/v1/images",
            json={"name": name, "map": {"public": f"remote-{name}"}},
            headers={"X-Auth-Token": token},
            timeout=30,
        )
        assert r.status_code == 201, r.text
    shown = canopy_server.openstack("image", "show", names[0])
    locations = {
        loc["cloud"]: loc["remote_image"] for loc in shown["properties"]["canopy_locations"]
    }
    assert locations["public"] == f"remote-{names[0]}"

    # Ansible's openstack.cloud lists every image with no filter and matches client-side:
    # more than a page (25), so the SDK must follow Glance's `next` links.
    conn = canopy_server.sdk()
    try:
        listed = [i.name for i in conn.image.images()]
        assert len(listed) == len(set(listed))
        assert set(names) | {"cirros", "ubuntu-24.04"} <= set(listed)
        found = conn.image.find_image(names[-1])
        assert found is not None and found.name == names[-1]
        assert conn.get_image("cirros").id == CIRROS
        assert [i.name for i in conn.image.images(name=names[3])] == [names[3]]
    finally:
        conn.close()
