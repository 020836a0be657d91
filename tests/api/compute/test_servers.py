"""POST/GET/PUT/DELETE /servers and server actions, through the real app over a whole control
plane on a fake clock (controllers run when the test steps them), on both databases."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from canopy.bootstrap import ensure_project
from canopy.store.models import Keypair, Server, ServerGroup
from tests.api.compute.helpers import (
    V21,
    Who,
    create,
    fault,
    server_body,
    show,
    until_gone,
    until_status,
    who,
)
from tests.api.conftest import Api

# The non-admin server view, field by field, at the versions OSC and the SDK use.
BASE_KEYS = {
    "id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor",
    "created", "updated", "addresses", "accessIPv4", "accessIPv6", "links",
    "OS-DCF:diskConfig", "OS-EXT-AZ:availability_zone", "config_drive", "key_name",
    "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at", "security_groups",
    "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state", "OS-EXT-STS:power_state",
    "os-extended-volumes:volumes_attached", "progress",
}  # fmt: skip
KEYS_247 = BASE_KEYS | {"locked", "description", "tags"}
KEYS_279 = KEYS_247 | {"trusted_image_certificates", "server_groups", "locked_reason"}
ADMIN_KEYS = {
    "OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name",
    "OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-SRV-ATTR:hostname",
    "OS-EXT-SRV-ATTR:kernel_id", "OS-EXT-SRV-ATTR:launch_index",
    "OS-EXT-SRV-ATTR:ramdisk_id", "OS-EXT-SRV-ATTR:reservation_id",
    "OS-EXT-SRV-ATTR:root_device_name", "OS-EXT-SRV-ATTR:user_data", "host_status",
}  # fmt: skip
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PERFECT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
CIRROS = "6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01"


# Create and the server view -----------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "keys"), [("2.1", BASE_KEYS), ("2.47", KEYS_247), ("2.79", KEYS_279)]
)
async def test_create_to_active_with_every_field(api: Api, version: str, keys: set[str]) -> None:
    w = await who(api)
    body = server_body("web", metadata={"role": "web"})
    if version != "2.1":
        body["server"]["networks"] = "auto"
    r = await api.client.post(f"{V21}/servers", headers=w.h(version), json=body)
    assert r.status_code == 202, r.text
    created = r.json()["server"]
    assert set(created) == {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"}
    sid = created["id"]
    assert created["security_groups"] == [{"name": "default"}]
    assert r.headers["Location"] == f"http://canopy.test{V21}/servers/{sid}"
    assert created["links"][1]["href"] == f"http://canopy.test/compute/servers/{sid}"

    building = (await api.client.get(f"{V21}/servers/{sid}", headers=w.h(version))).json()
    b = building["server"]
    assert (b["status"], b["OS-EXT-STS:vm_state"], b["OS-EXT-STS:task_state"]) == (
        "BUILD",
        "building",
        "scheduling",
    )
    assert b["hostId"] == "" and b["OS-EXT-AZ:availability_zone"] == ""
    assert b["OS-EXT-STS:power_state"] == 0 and b["addresses"] == {}

    await until_status(api, w, sid, "ACTIVE")
    s = (await api.client.get(f"{V21}/servers/{sid}", headers=w.h(version))).json()["server"]
    assert set(s) == keys
    assert (s["id"], s["name"], s["status"]) == (sid, "web", "ACTIVE")
    assert (s["tenant_id"], s["user_id"]) == (w.project_id, w.user_id)
    assert s["metadata"] == {"role": "web"}
    cloud = s["OS-EXT-AZ:availability_zone"]
    assert cloud == "private"  # the free private cloud fills first
    assert s["hostId"] == hashlib.sha224((w.project_id + cloud).encode()).hexdigest()
    assert s["image"]["id"] == CIRROS
    assert s["image"]["links"][0]["rel"] == "bookmark"
    if version == "2.1":
        assert s["flavor"]["id"] == "1"
        assert s["flavor"]["links"][0]["href"] == "http://canopy.test/compute/flavors/1"
    else:
        assert s["flavor"] == {
            "vcpus": 1,
            "ram": 512,
            "disk": 1,
            "ephemeral": 0,
            "swap": 0,
            "original_name": "m1.tiny",
            "extra_specs": {},
        }
    assert ISO_Z.match(s["created"]) and ISO_Z.match(s["updated"])
    assert PERFECT.match(s["OS-SRV-USG:launched_at"])
    assert s["OS-SRV-USG:terminated_at"] is None
    [addr] = s["addresses"]["private"]
    assert addr["version"] == 4 and addr["OS-EXT-IPS:type"] == "fixed"
    assert re.match(r"^fa:16:3e(:[0-9a-f]{2}){3}$", addr["OS-EXT-IPS-MAC:mac_addr"])
    assert (s["accessIPv4"], s["accessIPv6"], s["config_drive"]) == ("", "", "")
    assert (s["OS-EXT-STS:vm_state"], s["OS-EXT-STS:task_state"]) == ("active", None)
    assert s["OS-EXT-STS:power_state"] == 1 and s["progress"] == 0
    assert s["OS-DCF:diskConfig"] == "MANUAL"
    assert s["security_groups"] == [{"name": "default"}]
    assert s["os-extended-volumes:volumes_attached"] == []
    assert s["key_name"] is None
    if version != "2.1":
        assert s["locked"] is False and s["tags"] == [] and s["description"] is None
    if version == "2.79":
        assert s["server_groups"] == [] and s["locked_reason"] is None
        assert s["trusted_image_certificates"] is None

    # The detail list shows the same server (without 2.71's server_groups).
    r = await api.client.get(f"{V21}/servers/detail", headers=w.h(version))
    [listed] = r.json()["servers"]
    assert set(listed) == keys - {"server_groups"}
    r = await api.client.get(f"{V21}/servers", headers=w.h(version))
    assert r.json()["servers"] == [{"id": sid, "name": "web", "links": s["links"]}]


@pytest.mark.parametrize("version", ["2.1", "2.2", "2.3", "2.16", "2.79"])
async def test_admin_sees_extended_attributes(api: Api, version: str) -> None:
    w = await who(api)
    admin = await who(api, role="admin", project="admin")
    body = server_body("adm", user_data=base64.b64encode(b"#!/bin/sh\n").decode())
    if version == "2.79":
        body["server"]["networks"] = "none"
    r = await api.client.post(f"{V21}/servers", headers=w.h(version), json=body)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    await until_status(api, w, sid, "ACTIVE")
    s = await show(api, admin, sid, version)
    assert s["OS-EXT-SRV-ATTR:host"] == s["OS-EXT-SRV-ATTR:hypervisor_hostname"] == "private"
    assert s["OS-EXT-SRV-ATTR:instance_name"]  # the id on the backing cloud
    at_least_23 = version not in ("2.1", "2.2")
    assert ("OS-EXT-SRV-ATTR:reservation_id" in s) == at_least_23
    if at_least_23:
        assert s["OS-EXT-SRV-ATTR:reservation_id"].startswith("r-")
        assert s["OS-EXT-SRV-ATTR:launch_index"] == 0
        assert s["OS-EXT-SRV-ATTR:hostname"] == "adm"
        assert base64.b64decode(s["OS-EXT-SRV-ATTR:user_data"]) == b"#!/bin/sh\n"
    assert ("host_status" in s) == (version in ("2.16", "2.79"))
    if "host_status" in s:
        assert s["host_status"] == "UP"
    # The member sees none of it.
    mine = await show(api, w, sid, version)
    assert not {k for k in mine if k.startswith("OS-EXT-SRV-ATTR")} and "host_status" not in mine


async def test_create_response_variants(api: Api) -> None:
    w = await who(api)
    body = server_body(
        "r",
        networks=[{"uuid": str(uuid.uuid4())}],
        security_groups=[{"name": "web"}],
        adminPass="s3cret",
        return_reservation_id=False,
    )
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
    assert r.status_code == 202, r.text
    assert r.json()["server"]["adminPass"] == "s3cret"
    assert r.json()["server"]["security_groups"] == [{"name": "web"}]
    # return_reservation_id: the reservation, which also filters the list.
    body = server_body("multi", networks="none", min_count=3, return_reservation_id=True)
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
    assert r.status_code == 202, r.text
    resv = r.json()["reservation_id"]
    assert set(r.json()) == {"reservation_id"} and resv.startswith("r-")
    r = await api.client.get(f"{V21}/servers?reservation_id={resv}", headers=w.h("2.79"))
    assert sorted(s["name"] for s in r.json()["servers"]) == ["multi-1", "multi-2", "multi-3"]


async def test_flavor_and_image_references(api: Api) -> None:
    w = await who(api)
    # flavorRef by id, by name and by URL; imageRef by id or name.
    for ref in ("2", "m1.small", "http://canopy.test/compute/v2.1/flavors/2"):
        sid = await create(api, w, "f", flavorRef=ref, imageRef=CIRROS)
        assert (await show(api, w, sid))["flavor"]["original_name"] == "m1.small"
    r = await api.client.post(
        f"{V21}/servers", headers=w.h("2.79"), json=server_body(flavorRef="99", networks="none")
    )
    assert fault(r, 400) == "Flavor 99 could not be found."
    r = await api.client.post(
        f"{V21}/servers",
        headers=w.h("2.79"),
        json=server_body(imageRef="windows-95", networks="none"),
    )
    assert fault(r, 400) == "Image windows-95 could not be found."
    r = await api.client.post(
        f"{V21}/servers",
        headers=w.h("2.79"),
        json=server_body(availability_zone="mars", networks="none"),
    )
    assert "mars" in fault(r, 400)
    r = await api.client.post(
        f"{V21}/servers", headers=w.h("2.79"), json={"server": {"name": "x", "networks": "none"}}
    )
    fault(r, 400)  # flavorRef is required
    r = await api.client.post(
        f"{V21}/servers",
        headers=w.h("2.79"),
        json={"server": {"name": "x", "flavorRef": "1", "networks": "none"}},
    )
    assert fault(r, 400) == "Missing imageRef attribute"


async def test_boot_from_a_block_device_mapping(api: Api) -> None:
    w = await who(api)
    bdm = [
        {
            "uuid": CIRROS,
            "boot_index": 0,
            "source_type": "image",
            "destination_type": "volume",
            "volume_size": 1,
            "delete_on_termination": True,
        }
    ]
    body = {
        "server": {
            "name": "bfv",
            "flavorRef": "1",
            "networks": "none",
            "block_device_mapping_v2": bdm,
        }
    }
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
    assert r.status_code == 202, r.text
    s = await until_status(api, w, r.json()["server"]["id"], "ACTIVE")
    assert s["image"] == ""  # Nova shows "" for a server booted from volume
    # OSC's own BDM for image boots is accepted alongside imageRef.
    osc = [dict(bdm[0], destination_type="local")]
    sid = await create(api, w, "osc", block_device_mapping_v2=osc)
    assert (await show(api, w, sid))["image"]["id"] == CIRROS
    # Volumes are not something canopy has.
    vol = [
        {
            "uuid": str(uuid.uuid4()),
            "boot_index": 0,
            "source_type": "volume",
            "destination_type": "volume",
        }
    ]
    r = await api.client.post(
        f"{V21}/servers",
        headers=w.h("2.79"),
        json={
            "server": {
                "name": "v",
                "flavorRef": "1",
                "networks": "none",
                "block_device_mapping_v2": vol,
            }
        },
    )
    assert "volume" in fault(r, 400)


async def test_pinned_zone_and_scheduler_decides(api: Api) -> None:
    w = await who(api)
    a = await create(api, w, "a")
    b = await create(api, w, "b", availability_zone="public")
    assert (await until_status(api, w, a, "ACTIVE"))["OS-EXT-AZ:availability_zone"] == "private"
    before = await show(api, w, b)
    assert before["OS-EXT-AZ:availability_zone"] in ("public", "")
    assert (await until_status(api, w, b, "ACTIVE"))["OS-EXT-AZ:availability_zone"] == "public"
    # "nova", Nova's default zone name, means no preference when no cloud has that name.
    c = await create(api, w, "c", availability_zone="nova")
    assert (await until_status(api, w, c, "ACTIVE"))["OS-EXT-AZ:availability_zone"] == "private"
    # zone:host is an admin's forced host.
    r = await api.client.post(
        f"{V21}/servers",
        headers=w.h("2.79"),
        json=server_body(availability_zone="public:public", networks="none"),
    )
    assert "forced_host" in fault(r, 403)


async def test_key_name_and_server_group_hint(api: Api) -> None:
    w = await who(api)
    key = f"k-{uuid.uuid4().hex[:8]}"
    r = await api.client.post(
        f"{V21}/servers", headers=w.h("2.79"), json=server_body(key_name=key, networks="none")
    )
    assert fault(r, 400) == "Invalid key_name provided."
    gid = str(uuid.uuid4())
    async with api.plane.db.session() as s:
        s.add(
            Keypair(
                user_id=w.user_id,
                project_id=w.project_id,
                name=key,
                type="ssh",
                public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE test",
                fingerprint="aa:bb",
                created_at=api.plane.clock.now(),
            )
        )
        s.add(
            ServerGroup(
                id=gid,
                project_id=w.project_id,
                user_id=w.user_id,
                name="g",
                policy="anti-affinity",
                created_at=api.plane.clock.now(),
            )
        )
    body = server_body("kg", key_name=key, networks="none")
    body["os:scheduler_hints"] = {"group": gid}
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
    assert r.status_code == 202, r.text
    s = await show(api, w, r.json()["server"]["id"])
    assert s["key_name"] == key and s["server_groups"] == [gid]
    body["os:scheduler_hints"] = {"group": str(uuid.uuid4())}
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
    assert "server group" in fault(r, 400)


@pytest.mark.parametrize(
    ("version", "extra", "message"),
    [
        ("2.37", {}, "'networks' is a required property"),
        ("2.36", {"networks": "none"}, "is not of type 'array'"),
        ("2.18", {"description": "d"}, "'description' was unexpected"),
        ("2.51", {"networks": "none", "tags": ["a"]}, "'tags' was unexpected"),
        ("2.37", {"networks": [{"uuid": "not-a-uuid"}]}, "is not a 'uuid'"),
        ("2.79", {"networks": "none", "bogus": 1}, "bogus"),
        ("2.79", {"networks": "none", "name": " padded "}, "whitespace"),
        ("2.79", {"networks": "none", "metadata": {"k": 1}}, "metadata"),
        ("2.79", {"networks": "none", "min_count": 3, "max_count": 2}, "min_count"),
        ("2.79", {"networks": "none", "user_data": "%%%"}, "base64"),
        ("2.79", {"networks": "none", "tags": ["a/b"]}, "tags"),
        (
            "2.56",
            {"networks": "none", "personality": [{"path": "/x", "contents": "eA=="}]},
            "user_data",
        ),
    ],
)
async def test_create_checks_each_microversion(
    api: Api, version: str, extra: dict[str, Any], message: str
) -> None:
    w = await who(api)
    r = await api.client.post(f"{V21}/servers", headers=w.h(version), json=server_body(**extra))
    assert message in fault(r, 400)


async def test_description_and_tags_by_version(api: Api) -> None:
    w = await who(api)
    old = await create(api, w, "old", version="2.1")  # before 2.19 the description is the name
    new = await create(api, w, "new", description="the new one", tags=["red", "blue"])
    assert (await show(api, w, old))["description"] == "old"
    s = await show(api, w, new)
    # Tags come back sorted (Nova returns them in its table's key order).
    assert s["description"] == "the new one" and s["tags"] == ["blue", "red"]
    assert "description" not in await show(api, w, new, "2.18")
    assert "tags" not in await show(api, w, new, "2.25")


async def test_over_quota_is_403(api: Api) -> None:
    await ensure_project(api.plane.db, api.plane.clock, "tiny", quotas={"instances": 1})
    w = await who(api, project="tiny", user="tina")
    await create(api, w, "one")
    r = await api.client.post(
        f"{V21}/servers", headers=w.h("2.79"), json=server_body("two", networks="none")
    )
    assert fault(r, 403) == (
        "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"
    )
    await ensure_project(api.plane.db, api.plane.clock, "tiny", quotas={"metadata_items": 2})
    r = await api.client.post(
        f"{V21}/servers",
        headers=w.h("2.79"),
        json=server_body(networks="none", metadata={"a": "1", "b": "2", "c": "3"}),
    )
    assert fault(r, 403) == "Maximum number of metadata items exceeds 2"


# Roles and scope ------------------------------------------------------------------------


async def test_reader_may_look_but_not_touch(api: Api) -> None:
    w = await who(api)
    reader = await who(api, role="reader")
    sid = await create(api, w, "r")
    assert (await show(api, reader, sid))["id"] == sid
    r = await api.client.post(
        f"{V21}/servers", headers=reader.h("2.79"), json=server_body(networks="none")
    )
    fault(r, 403)
    r = await api.client.delete(f"{V21}/servers/{sid}", headers=reader.h())
    fault(r, 403)
    r = await api.client.post(
        f"{V21}/servers/{sid}/action", headers=reader.h(), json={"os-stop": None}
    )
    fault(r, 403)
    r = await api.client.put(
        f"{V21}/servers/{sid}", headers=reader.h(), json={"server": {"name": "x"}}
    )
    fault(r, 403)


async def test_another_projects_server_is_not_found(api: Api) -> None:
    w = await who(api)
    other = await who(api, project="other", user="olga")
    sid = await create(api, other, "theirs")
    message = f"Instance {sid} could not be found."
    r = await api.client.get(f"{V21}/servers/{sid}", headers=w.h())
    assert fault(r, 404) == message
    r = await api.client.delete(f"{V21}/servers/{sid}", headers=w.h())
    assert fault(r, 404) == message
    r = await api.client.post(f"{V21}/servers/{sid}/action", headers=w.h(), json={"os-stop": None})
    assert fault(r, 404) == message
    r = await api.client.get(f"{V21}/servers/detail", headers=w.h())
    assert r.json()["servers"] == []
    r = await api.client.get(f"{V21}/servers/no-such-server", headers=w.h())
    assert fault(r, 404) == "Instance no-such-server could not be found."
    # all_tenants is for admins.
    r = await api.client.get(f"{V21}/servers/detail?all_tenants=1", headers=w.h())
    assert "get_all_tenants" in fault(r, 403)
    admin = await who(api, role="admin", project="admin")
    r = await api.client.get(f"{V21}/servers/detail?all_tenants=1", headers=admin.h())
    assert [s["id"] for s in r.json()["servers"]] == [sid]
    r = await api.client.get(
        f"{V21}/servers/detail?all_tenants=true&project_id={w.project_id}", headers=admin.h()
    )
    assert r.json()["servers"] == []
    r = await api.client.get(f"{V21}/servers/detail", headers=admin.h())
    assert r.json()["servers"] == []  # an admin's own project, without all_tenants


# Lists ----------------------------------------------------------------------------------


async def test_pagination_follows_next_links(api: Api) -> None:
    w = await who(api)
    body = server_body("p", networks="none", min_count=250, max_count=250)
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
    assert r.status_code == 202, r.text
    url: str | None = f"{V21}/servers/detail?limit=100"
    pages: list[list[str]] = []
    while url:
        r = await api.client.get(url, headers=w.h("2.79"))
        assert r.status_code == 200, r.text
        data = r.json()
        pages.append([s["id"] for s in data["servers"]])
        nxt = data.get("servers_links", [])
        url = None
        if nxt:
            assert nxt[0]["rel"] == "next"
            href = urlsplit(nxt[0]["href"])
            assert (href.scheme, href.netloc) == ("http", "canopy.test")
            assert parse_qs(href.query)["limit"] == ["100"]
            url = f"{href.path}?{href.query}"
    assert [len(p) for p in pages] == [100, 100, 50]
    ids = [i for p in pages for i in p]
    assert len(set(ids)) == 250
    async with api.plane.db.read() as s:
        rows = (
            await s.execute(
                select(Server.id)
                .where(Server.project_id == w.project_id)
                .order_by(Server.created_at.desc(), Server.id.desc())
            )
        ).scalars()
        assert ids == list(rows)
    r = await api.client.get(f"{V21}/servers?marker=nope", headers=w.h())
    assert fault(r, 400) == "marker [nope] not found"
    r = await api.client.get(f"{V21}/servers?limit=-1", headers=w.h())
    fault(r, 400)
    r = await api.client.get(f"{V21}/servers?limit=0", headers=w.h())
    assert r.json() == {"servers": []}


async def test_sort_keys(api: Api) -> None:
    w = await who(api)
    for name in ("b", "c", "a"):
        await create(api, w, name)
        api.plane.clock.advance(1)
    r = await api.client.get(f"{V21}/servers?sort_key=display_name&sort_dir=asc", headers=w.h())
    assert [s["name"] for s in r.json()["servers"]] == ["a", "b", "c"]
    r = await api.client.get(
        f"{V21}/servers?sort_key=display_name&sort_dir=asc&limit=2", headers=w.h()
    )
    nxt = r.json()["servers_links"][0]["href"]
    r = await api.client.get(nxt.removeprefix("http://canopy.test"), headers=w.h())
    assert [s["name"] for s in r.json()["servers"]] == ["c"]
    r = await api.client.get(f"{V21}/servers", headers=w.h())
    assert [s["name"] for s in r.json()["servers"]] == ["a", "c", "b"]  # newest first
    r = await api.client.get(f"{V21}/servers?sort_dir=sideways", headers=w.h())
    fault(r, 400)
    r = await api.client.get(f"{V21}/servers?sort_key=host", headers=w.h())
    fault(r, 403)
    r = await api.client.get(f"{V21}/servers?sort_key=vcpus", headers=w.h("2.74"))
    assert r.status_code == 200  # ignored before 2.75
    r = await api.client.get(f"{V21}/servers?sort_key=vcpus", headers=w.h("2.75"))
    fault(r, 400)


async def test_name_is_a_regular_expression(api: Api) -> None:
    w = await who(api)
    for name in ("web-1", "web-2", "db-1"):
        await create(api, w, name)
    r = await api.client.get(f"{V21}/servers/detail?name=web", headers=w.h())
    assert sorted(s["name"] for s in r.json()["servers"]) == ["web-1", "web-2"]
    r = await api.client.get(f"{V21}/servers?name=^db-\\d$", headers=w.h())
    assert [s["name"] for s in r.json()["servers"]] == ["db-1"]
    r = await api.client.get(f"{V21}/servers?name=-1$", headers=w.h())
    assert sorted(s["name"] for s in r.json()["servers"]) == ["db-1", "web-1"]
    r = await api.client.get(f"{V21}/servers?name=web(", headers=w.h())
    assert "regular expression" in fault(r, 400)


async def test_ip_filters(api: Api) -> None:
    w = await who(api)
    a = await create(api, w, "a")
    b = await create(api, w, "b")
    addr = (await until_status(api, w, a, "ACTIVE"))["addresses"]["private"][0]["addr"]
    await until_status(api, w, b, "ACTIVE")
    r = await api.client.get(f"{V21}/servers?ip=^{addr.replace('.', '[.]')}$", headers=w.h())
    assert [s["name"] for s in r.json()["servers"]] == ["a"]
    r = await api.client.get(f"{V21}/servers?ip=^10[.]", headers=w.h())
    assert sorted(s["name"] for s in r.json()["servers"]) == ["a", "b"]
    r = await api.client.get(f"{V21}/servers?ip6=.", headers=w.h("2.5"))
    assert r.json()["servers"] == []
    r = await api.client.get(f"{V21}/servers?ip6=.", headers=w.h("2.4"))
    assert len(r.json()["servers"]) == 2  # before 2.5 Nova drops ip6 for non-admins


async def test_status_filter(api: Api) -> None:
    w = await who(api)
    a = await create(api, w, "a")
    await until_status(api, w, a, "ACTIVE")
    await create(api, w, "b")  # stays in BUILD until stepped
    r = await api.client.get(f"{V21}/servers?status=ACTIVE", headers=w.h())
    assert [s["name"] for s in r.json()["servers"]] == ["a"]
    r = await api.client.get(f"{V21}/servers?status=build&status=active", headers=w.h())
    assert sorted(s["name"] for s in r.json()["servers"]) == ["a", "b"]
    r = await api.client.get(f"{V21}/servers?status=PAUSED", headers=w.h())
    assert r.json()["servers"] == []
    r = await api.client.get(f"{V21}/servers?status=bogus", headers=w.h("2.37"))
    assert r.json() == {"servers": []}
    r = await api.client.get(f"{V21}/servers?status=bogus", headers=w.h("2.38"))
    assert fault(r, 400) == "Invalid status value"
    r = await api.client.get(f"{V21}/servers?status=DELETED", headers=w.h())
    assert fault(r, 403) == "Only administrators may list deleted instances"


async def test_unknown_query_parameters_from_275(api: Api) -> None:
    w = await who(api)
    r = await api.client.get(f"{V21}/servers/detail?colour=red", headers=w.h("2.74"))
    assert r.status_code == 200
    r = await api.client.get(f"{V21}/servers/detail?colour=red", headers=w.h("2.75"))
    assert "'colour' was unexpected" in fault(r, 400)
    r = await api.client.get(f"{V21}/servers/detail?deleted=False", headers=w.h("2.75"))
    assert r.status_code == 200  # OSC always sends it
    admin = await who(api, role="admin", project="admin")
    r = await api.client.get(f"{V21}/servers/detail?metadata=x", headers=admin.h())
    assert fault(r, 400) == "Invalid filter field: metadata."


async def test_changes_since_includes_deleted(api: Api) -> None:
    w = await who(api)
    keep = await create(api, w, "keep")
    gone = await create(api, w, "gone")
    await until_status(api, w, keep, "ACTIVE")
    await until_status(api, w, gone, "ACTIVE")
    api.plane.clock.advance(60)
    since = api.plane.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    r = await api.client.delete(f"{V21}/servers/{gone}", headers=w.h())
    assert r.status_code == 204 and r.content == b""
    await until_gone(api, w, gone)
    r = await api.client.get(f"{V21}/servers/detail", headers=w.h())
    assert [s["name"] for s in r.json()["servers"]] == ["keep"]
    # OSC sends deleted=False along with changes-since; Nova ignores it for non-admins.
    r = await api.client.get(
        f"{V21}/servers/detail?changes-since={since}&deleted=False", headers=w.h("2.79")
    )
    [d] = r.json()["servers"]
    assert (d["id"], d["status"], d["OS-EXT-STS:vm_state"]) == (gone, "DELETED", "deleted")
    assert PERFECT.match(d["OS-SRV-USG:terminated_at"])
    r = await api.client.get(
        f"{V21}/servers/detail?changes-since=2000-01-01T00:00:00", headers=w.h()
    )
    assert sorted(s["name"] for s in r.json()["servers"]) == ["gone", "keep"]
    # changes-before (2.66) bounds it from above.
    r = await api.client.get(f"{V21}/servers/detail?changes-before={since}", headers=w.h("2.66"))
    assert [s["name"] for s in r.json()["servers"]] == ["keep"]
    r = await api.client.get(f"{V21}/servers/detail?changes-since=yesterday", headers=w.h())
    assert "date-time" in fault(r, 400)
    r = await api.client.get(
        f"{V21}/servers/detail?changes-since={since}&changes-before=2000-01-01T00:00:00Z",
        headers=w.h("2.66"),
    )
    fault(r, 400)
    # A cloud admin can ask for live servers only.
    admin = await who(api, role="admin", project="admin")
    r = await api.client.get(
        f"{V21}/servers/detail?all_tenants=1&changes-since={since}&deleted=False",
        headers=admin.h(),
    )
    assert r.json()["servers"] == []
    r = await api.client.get(f"{V21}/servers/detail?all_tenants=1&deleted=true", headers=admin.h())
    assert [s["id"] for s in r.json()["servers"]] == [gone]


async def test_tag_filters(api: Api) -> None:
    w = await who(api)
    await create(api, w, "rg", tags=["red", "green"])
    await create(api, w, "r", tags=["red"])
    await create(api, w, "none")

    async def names(q: str) -> list[str]:
        r = await api.client.get(f"{V21}/servers?{q}", headers=w.h("2.79"))
        assert r.status_code == 200, r.text
        return sorted(s["name"] for s in r.json()["servers"])

    assert await names("tags=red,green") == ["rg"]
    assert await names("tags-any=green,blue") == ["rg"]
    assert await names("not-tags=red,green") == ["none", "r"]
    assert await names("not-tags-any=green") == ["none", "r"]
    assert await names("tags=red&not-tags-any=green") == ["r"]
    assert await names("locked=false") == ["none", "r", "rg"]
    assert await names("locked=true") == []


# One server -----------------------------------------------------------------------------


async def test_update_and_tag_subresource(api: Api) -> None:
    w = await who(api)
    sid = await create(api, w, "before")
    r = await api.client.put(
        f"{V21}/servers/{sid}",
        headers=w.h("2.79"),
        json={"server": {"name": "after", "description": "renamed"}},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["server"]["name"], r.json()["server"]["description"]) == ("after", "renamed")
    r = await api.client.put(
        f"{V21}/servers/{sid}", headers=w.h("2.18"), json={"server": {"description": "x"}}
    )
    fault(r, 400)
    base = f"{V21}/servers/{sid}/tags"
    r = await api.client.put(base, headers=w.h("2.26"), json={"tags": ["a", "b"]})
    assert r.json() == {"tags": ["a", "b"]}
    r = await api.client.put(f"{base}/c", headers=w.h("2.26"))
    assert r.status_code == 201 and r.headers["Location"].endswith("/tags/c")
    assert (await api.client.put(f"{base}/c", headers=w.h("2.26"))).status_code == 204
    assert (await api.client.get(f"{base}/c", headers=w.h("2.26"))).status_code == 204
    assert (await api.client.delete(f"{base}/a", headers=w.h("2.26"))).status_code == 204
    fault(await api.client.get(f"{base}/a", headers=w.h("2.26")), 404)
    assert (await api.client.get(base, headers=w.h("2.26"))).json() == {"tags": ["b", "c"]}
    assert (await api.client.delete(base, headers=w.h("2.26"))).status_code == 204
    assert (await show(api, w, sid))["tags"] == []
    fault(await api.client.get(base, headers=w.h("2.25")), 404)


async def test_fault_of_a_server_in_error(api: Api) -> None:
    w = await who(api)
    sid = await create(api, w, "broken")
    now = api.plane.clock.now()
    async with api.plane.db.session() as s:
        await s.execute(
            update(Server)
            .where(Server.id == sid)
            .values(
                status="ERROR",
                phase="failed",
                task_state=None,
                fault_code=500,
                fault_message="No valid host was found. capacity removed every cloud",
                fault_at=now,
                attempt_log=[{"cloud": "private", "error": "capacity error: full"}],
            )
        )
    s_ = await show(api, w, sid)
    assert s_["status"] == "ERROR" and s_["OS-EXT-STS:vm_state"] == "error"
    assert s_["fault"]["code"] == 500 and "No valid host" in s_["fault"]["message"]
    assert ISO_Z.match(s_["fault"]["created"]) and "details" not in s_["fault"]
    assert "progress" not in s_
    admin = await who(api, role="admin", project="admin")
    assert "capacity error" in (await show(api, admin, sid))["fault"]["details"]


# Actions --------------------------------------------------------------------------------


async def _act(api: Api, w: Who, sid: str, body: dict[str, Any]) -> Any:
    return await api.client.post(f"{V21}/servers/{sid}/action", headers=w.h("2.79"), json=body)


async def test_a_create_wakes_placement_alone(api: Api) -> None:
    w = await who(api)
    api.wake.take()
    await create(api, w, "p")
    assert api.wake.take() == ("placement",)  # not every loop: a burst would wake them all


async def test_stop_start_reboot_delete(api: Api) -> None:
    w = await who(api)
    sid = await create(api, w, "p")
    r = await _act(api, w, sid, {"os-stop": None})
    assert fault(r, 409) == f"Cannot 'stop' instance {sid} while it is in vm_state building"
    await until_status(api, w, sid, "ACTIVE")

    r = await _act(api, w, sid, {"os-stop": None})
    assert r.status_code == 202 and r.content == b""
    assert api.wake.is_set()  # the controllers are woken once the intent has committed
    assert api.wake.take() == ()  # every loop (power among them)
    s = await show(api, w, sid)
    assert (s["status"], s["OS-EXT-STS:task_state"]) == ("ACTIVE", "powering-off")
    s = await until_status(api, w, sid, "SHUTOFF")
    assert (s["OS-EXT-STS:vm_state"], s["OS-EXT-STS:power_state"]) == ("stopped", 4)
    assert "progress" not in s
    r = await _act(api, w, sid, {"os-stop": None})
    assert fault(r, 409) == f"Cannot 'stop' instance {sid} while it is in vm_state stopped"

    assert (await _act(api, w, sid, {"os-start": None})).status_code == 202
    await until_status(api, w, sid, "ACTIVE")
    r = await _act(api, w, sid, {"os-start": None})
    fault(r, 409)

    assert (await _act(api, w, sid, {"reboot": {"type": "HARD"}})).status_code == 202
    s = await show(api, w, sid)
    assert (s["status"], s["OS-EXT-STS:task_state"]) == ("HARD_REBOOT", "rebooting_hard")
    await until_status(api, w, sid, "ACTIVE")
    assert (await _act(api, w, sid, {"reboot": {"type": "soft"}})).status_code == 202
    assert (await show(api, w, sid))["status"] == "REBOOT"
    await until_status(api, w, sid, "ACTIVE")

    fault(await _act(api, w, sid, {"reboot": {"type": "GENTLE"}}), 400)
    fault(await _act(api, w, sid, {"reboot": {}}), 400)
    assert "no such action" in fault(await _act(api, w, sid, {"fly": None}), 400)
    assert "not supported" in fault(await _act(api, w, sid, {"pause": None}), 400)
    fault(await _act(api, w, sid, {"os-stop": None, "os-start": None}), 400)

    r = await api.client.delete(f"{V21}/servers/{sid}", headers=w.h())
    assert r.status_code == 204
    s = await show(api, w, sid)
    assert s["OS-EXT-STS:task_state"] == "deleting"
    assert (await api.client.delete(f"{V21}/servers/{sid}", headers=w.h())).status_code == 204
    await until_gone(api, w, sid)
    r = await api.client.delete(f"{V21}/servers/{sid}", headers=w.h())
    fault(r, 404)
    fault(await _act(api, w, sid, {"os-start": None}), 404)
