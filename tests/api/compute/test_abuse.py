"""Bad input on the servers, flavors, zones and actions endpoints: always a 4xx Nova fault,
never a 500, on both databases (PostgreSQL refuses NUL characters, for one)."""

from __future__ import annotations

from typing import Any

from tests.api.compute.helpers import V21, create, server_body, who
from tests.api.conftest import Api

NAMES = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}

WEIRD = ["%00", "a%00b", "%C3%A9", "x" * 300, "%E2%80%AE", "'", "%25", "null"]


def _fault_4xx(r: Any) -> None:
    assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text[:300])
    body = r.json()
    assert list(body) == [NAMES.get(r.status_code, "badRequest")] or len(body) == 1, body


async def test_weird_ids_and_query_values(api: Api) -> None:
    w = await who(api)
    sid = await create(api, w, "target")
    for weird in WEIRD:
        for path in (
            f"/servers/{weird}",
            f"/servers/{weird}/os-instance-actions",
            f"/servers/{sid}/os-instance-actions/{weird}",
            f"/flavors/{weird}",
            f"/servers/{sid}/tags/{weird}",
        ):
            r = await api.client.get(V21 + path, headers=w.h("2.79"))
            assert r.status_code in (200, 204) or r.status_code < 500, (path, r.text)
            if r.status_code >= 400:
                _fault_4xx(r)
        for param in (
            "limit", "marker", "name", "status", "changes-since", "changes-before", "image",
            "flavor", "reservation_id", "tags", "tags-any", "not-tags", "ip", "ip6", "locked",
            "sort_key", "sort_dir", "all_tenants", "deleted",
        ):  # fmt: skip
            for path in ("/servers/detail", "/servers"):
                r = await api.client.get(f"{V21}{path}?{param}={weird}", headers=w.h("2.79"))
                if r.status_code != 200:
                    _fault_4xx(r)
        for param in ("limit", "marker", "minRam", "minDisk", "sort_key", "is_public"):
            r = await api.client.get(f"{V21}/flavors/detail?{param}={weird}", headers=w.h())
            if r.status_code != 200:
                _fault_4xx(r)
        for param in ("limit", "marker", "changes-since"):
            r = await api.client.get(
                f"{V21}/servers/{sid}/os-instance-actions?{param}={weird}", headers=w.h("2.79")
            )
            if r.status_code != 200:
                _fault_4xx(r)
    # The admin's filters too.
    admin = await who(api, role="admin", project="admin")
    for param in ("project_id", "user_id", "host", "availability_zone", "key_name", "vm_state"):
        r = await api.client.get(
            f"{V21}/servers/detail?all_tenants=1&{param}=%00", headers=admin.h("2.79")
        )
        if r.status_code != 200:
            _fault_4xx(r)


async def test_weird_bodies(api: Api) -> None:
    w = await who(api)
    sid = await create(api, w, "target")
    bodies: list[Any] = [
        None,
        [],
        {"server": None},
        {"server": []},
        {"server": {"name": "\x00", "flavorRef": "1", "imageRef": "cirros", "networks": "none"}},
        server_body("a\x00b", networks="none"),
        server_body(flavorRef="\x00", networks="none"),
        server_body(imageRef="\x00", networks="none"),
        server_body(availability_zone="\x00", networks="none"),
        server_body(key_name="\x00", networks="none"),
        server_body(metadata={"\x00": "\x00"}, networks="none"),
        server_body(tags=["\x00"], networks="none"),
        server_body(description="\x00", networks="none"),
        server_body(networks="none", min_count="many"),
        server_body(networks="none", min_count=0),
        server_body(networks="none", max_count=10**9),
        server_body(networks="none", flavorRef=1.5),
        server_body(networks=[{"uuid": None}]),
        server_body(networks="none", block_device_mapping_v2=[{"boot_index": "x"}]),
        server_body(networks="none", block_device_mapping=[{"volume_id": "v"}]),
        {"server": {"name": "x", "flavorRef": "1", "imageRef": "cirros", "networks": "none"},
         "os:scheduler_hints": {"group": ["\x00"]}},
        {"server": {"name": "x", "flavorRef": "1", "imageRef": "cirros", "networks": "none"},
         "os:scheduler_hints": {"group": 5}},
    ]  # fmt: skip
    for body in bodies:
        r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
        assert r.status_code != 202, body
        _fault_4xx(r)
    for body in (
        None,
        [],
        {},
        {"reboot": None},
        {"reboot": {"type": 5}},
        {"os-stop": None, "x": 1},
    ):
        r = await api.client.post(f"{V21}/servers/{sid}/action", headers=w.h(), json=body)
        _fault_4xx(r)
    for body in (None, {"server": {"name": "\x00"}}, {"server": {"name": ""}}, {"server": 5}):
        r = await api.client.put(f"{V21}/servers/{sid}", headers=w.h("2.79"), json=body)
        _fault_4xx(r)
    for body in (None, {"tags": ["\x00"]}, {"tags": ["a,b"]}, {"tags": ["x"] * 51}):
        r = await api.client.put(f"{V21}/servers/{sid}/tags", headers=w.h("2.79"), json=body)
        _fault_4xx(r)
    r = await api.client.put(f"{V21}/servers/{sid}/tags/a%2Cb", headers=w.h("2.79"))
    _fault_4xx(r)
    r = await api.client.post(
        f"{V21}/servers",
        headers={**w.h("2.79"), "Content-Type": "application/json"},
        content=b'{"server": {"name": "x",',
    )
    _fault_4xx(r)
