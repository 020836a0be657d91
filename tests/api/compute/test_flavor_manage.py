"""POST/PUT/DELETE /flavors, extra specs and flavor access: a cloud admin's, in Nova's shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from canopy.store.models import Flavor, FlavorMapping, Job, Server
from tests.api.compute.helpers import V21, Who, create, fault, who
from tests.api.conftest import Api

ADMIN = {"OpenStack-API-Version": "compute 2.79"}


def body(name: str = "c1.big", **kw: Any) -> dict[str, Any]:
    return {"flavor": {"name": name, "ram": 1024, "vcpus": 2, "disk": 10, **kw}}


async def make(api: Api, name: str = "c1.big", **kw: Any) -> dict[str, Any]:
    r = await api.client.post(f"{V21}/flavors", headers=ADMIN, json=body(name, **kw))
    assert r.status_code == 200, r.text
    flavor: dict[str, Any] = r.json()["flavor"]
    return flavor


async def test_an_admin_creates_a_flavor_with_every_field(api: Api) -> None:
    made = await make(
        api,
        id="c1-big",
        swap=512,
        rxtx_factor="2.5",
        description="two cores",
        **{"OS-FLV-EXT-DATA:ephemeral": 5, "os-flavor-access:is_public": "false"},
    )
    assert made["id"] == "c1-big" and made["name"] == "c1.big"
    assert (made["ram"], made["vcpus"], made["disk"]) == (1024, 2, 10)
    assert made["swap"] == 512 and made["OS-FLV-EXT-DATA:ephemeral"] == 5
    assert made["rxtx_factor"] == 2.5 and made["description"] == "two cores"
    assert made["os-flavor-access:is_public"] is False and made["extra_specs"] == {}
    r = await api.client.get(f"{V21}/flavors/c1-big", headers=ADMIN)
    assert r.json()["flavor"] == made
    # No id (or a null one): a UUID, as Nova makes.
    auto = await make(api, "c1.auto", id=None)
    assert len(auto["id"]) == 36 and auto["os-flavor-access:is_public"] is True


async def test_description_needs_2_55(api: Api) -> None:
    r = await api.client.post(
        f"{V21}/flavors",
        headers={"OpenStack-API-Version": "compute 2.54"},
        json=body(description="x"),
    )
    assert "Additional properties are not allowed ('description' was unexpected)" in fault(r, 400)
    made = await make(api)
    old = {"OpenStack-API-Version": "compute 2.54"}
    r = await api.client.put(
        f"{V21}/flavors/{made['id']}", headers=old, json={"flavor": {"description": "d"}}
    )
    assert r.status_code == 404
    r = await api.client.put(
        f"{V21}/flavors/{made['id']}", headers=ADMIN, json={"flavor": {"description": "d"}}
    )
    assert r.status_code == 200 and r.json()["flavor"]["description"] == "d"
    r = await api.client.put(
        f"{V21}/flavors/{made['id']}", headers=ADMIN, json={"flavor": {"name": "n"}}
    )
    assert "'name' was unexpected" in fault(r, 400)


async def test_bad_bodies_are_nova_400s_and_change_nothing(api: Api) -> None:
    cases = [
        ({"flavor": {"name": "x", "ram": 1, "vcpus": 1}}, "'disk' is a required property"),
        (body(ram=0), "Invalid input for field/attribute ram. Value: 0. 0 is less than the"),
        (body(vcpus="two"), "Invalid input for field/attribute vcpus. Value: two."),
        (body(disk=-1), "-1 is less than the minimum of 0"),
        (body(ram=2**31), "is greater than the maximum of 2147483647"),
        (body(rxtx_factor=0), "rxtx_factor"),
        (body(id=" x"), "Invalid input for field/attribute id."),
        (body(" padded"), "An invalid 'name' value was provided."),
        (body(**{"os-flavor-access:is_public": "maybe"}), "os-flavor-access:is_public"),
        (body(colour="red"), "('colour' was unexpected)"),
        ({"flavour": {}}, "'flavor' is a required property"),
    ]
    for sent, message in cases:
        r = await api.client.post(f"{V21}/flavors", headers=ADMIN, json=sent)
        assert message in fault(r, 400), (sent, r.text)
    async with api.plane.db.read() as s:
        names = set(await s.scalars(select(Flavor.name)))
    assert "x" not in names and "c1.big" not in names


async def test_a_name_or_id_taken_is_nova_409(api: Api) -> None:
    await make(api, id="c1")
    r = await api.client.post(f"{V21}/flavors", headers=ADMIN, json=body(id="c2"))
    assert fault(r, 409) == "Flavor with name c1.big already exists."
    r = await api.client.post(f"{V21}/flavors", headers=ADMIN, json=body("other", id="c1"))
    assert fault(r, 409) == "Flavor with ID c1 already exists."
    r = await api.client.post(f"{V21}/flavors", headers=ADMIN, json=body("m1.tiny"))
    assert fault(r, 409) == "Flavor with name m1.tiny already exists."


async def test_members_and_project_admins_get_nova_403(api: Api) -> None:
    made = await make(api, **{"os-flavor-access:is_public": False})
    fid = made["id"]
    for w in (await who(api), await who(api, role="admin")):
        calls = [
            ("POST", f"{V21}/flavors", body("sneaky"), "os-flavor-manage:create"),
            ("PUT", f"{V21}/flavors/1", {"flavor": {"description": "x"}},
             "os-flavor-manage:update"),
            ("DELETE", f"{V21}/flavors/1", None, "os-flavor-manage:delete"),
            ("POST", f"{V21}/flavors/1/os-extra_specs", {"extra_specs": {"a": "b"}},
             "os-flavor-extra-specs:create"),
            ("PUT", f"{V21}/flavors/1/os-extra_specs/a", {"a": "b"},
             "os-flavor-extra-specs:update"),
            ("DELETE", f"{V21}/flavors/1/os-extra_specs/a", None, "os-flavor-extra-specs:delete"),
            ("GET", f"{V21}/flavors/{fid}/os-flavor-access", None, "os-flavor-access"),
            ("POST", f"{V21}/flavors/{fid}/action", {"addTenantAccess": {"tenant": w.project_id}},
             "os-flavor-access:add_tenant_access"),
        ]  # fmt: skip
        for method, url, sent, policy in calls:
            r = await api.client.request(method, url, headers=w.h("2.79"), json=sent)
            assert fault(r, 403) == f"Policy doesn't allow os_compute_api:{policy} to be performed."
    r = await api.client.get(f"{V21}/flavors/1", headers=ADMIN)
    assert r.json()["flavor"]["description"] is None
    async with api.plane.db.read() as s:
        assert await s.scalar(select(Flavor.name).where(Flavor.name == "sneaky")) is None


async def _names(api: Api, w: Who, query: str = "") -> set[str]:
    r = await api.client.get(f"{V21}/flavors/detail{query}", headers=w.h("2.79"))
    assert r.status_code == 200, r.text
    return {f["name"] for f in r.json()["flavors"]}


async def test_a_private_flavor_is_seen_only_by_the_projects_it_is_shared_with(api: Api) -> None:
    made = await make(api, "secret", **{"os-flavor-access:is_public": False})
    fid = made["id"]
    alice, olga = await who(api), await who(api, project="other", user="olga")
    for w in (alice, olga):
        assert "secret" not in await _names(api, w)
        assert fault(await api.client.get(f"{V21}/flavors/{fid}", headers=w.h()), 404) == (
            f"Flavor {fid} could not be found."
        )
        r = await api.client.get(f"{V21}/flavors/{fid}/os-extra_specs", headers=w.h())
        fault(r, 404)
    # The admin lists it with is_public=false (or None), not by default.
    assert "secret" in await _names(api, Who(api.admin.token, "", ""), "?is_public=false")
    assert "m1.tiny" not in await _names(api, Who(api.admin.token, "", ""), "?is_public=false")

    share = {"addTenantAccess": {"tenant": alice.project_id}}
    r = await api.client.post(f"{V21}/flavors/{fid}/action", headers=ADMIN, json=share)
    assert r.status_code == 200
    assert r.json() == {"flavor_access": [{"flavor_id": fid, "tenant_id": alice.project_id}]}
    r = await api.client.post(f"{V21}/flavors/{fid}/action", headers=ADMIN, json=share)
    assert fault(r, 409) == (
        f"Flavor access already exists for flavor {fid} and project {alice.project_id} combination."
    )
    assert "secret" in await _names(api, alice)
    assert "secret" not in await _names(api, olga)
    r = await api.client.get(f"{V21}/flavors/{fid}", headers=alice.h())
    assert r.status_code == 200 and r.json()["flavor"]["os-flavor-access:is_public"] is False
    fault(await api.client.get(f"{V21}/flavors/{fid}", headers=olga.h()), 404)
    # Booting: alice may, olga's project is told the flavor does not exist.
    await create(api, alice, flavorRef=fid)
    r = await api.client.post(
        f"{V21}/servers",
        headers=olga.h("2.79"),
        json={"server": {"name": "vm", "imageRef": "cirros", "flavorRef": fid, "networks": "none"}},
    )
    assert fault(r, 400) == f"Flavor {fid} could not be found."

    r = await api.client.get(f"{V21}/flavors/{fid}/os-flavor-access", headers=ADMIN)
    assert r.json()["flavor_access"] == [{"flavor_id": fid, "tenant_id": alice.project_id}]
    unshare = {"removeTenantAccess": {"tenant": alice.project_id}}
    r = await api.client.post(f"{V21}/flavors/{fid}/action", headers=ADMIN, json=unshare)
    assert r.status_code == 200 and r.json() == {"flavor_access": []}
    assert "secret" not in await _names(api, alice)
    r = await api.client.post(f"{V21}/flavors/{fid}/action", headers=ADMIN, json=unshare)
    assert fault(r, 404) == (f"Flavor access not found for {fid} / {alice.project_id} combination.")


async def test_access_lists_refuse_public_flavors_and_unknown_projects(api: Api) -> None:
    r = await api.client.get(f"{V21}/flavors/1/os-flavor-access", headers=ADMIN)
    assert fault(r, 404) == "Access list not available for public flavors."
    alice = await who(api)
    share = {"addTenantAccess": {"tenant": alice.project_id}}
    r = await api.client.post(f"{V21}/flavors/1/action", headers=ADMIN, json=share)
    assert fault(r, 409) == "Can not add access to a public flavor."
    made = await make(api, **{"os-flavor-access:is_public": False})
    r = await api.client.post(
        f"{V21}/flavors/{made['id']}/action",
        headers=ADMIN,
        json={"addTenantAccess": {"tenant": "no-such-project"}},
    )
    assert fault(r, 400) == "Project ID no-such-project is not a valid project."
    r = await api.client.post(
        f"{V21}/flavors/{made['id']}/action", headers=ADMIN, json={"shrink": {}}
    )
    assert fault(r, 400) == "There is no such action: shrink"
    alice_id = alice.project_id
    two = {"addTenantAccess": {"tenant": alice_id}, "removeTenantAccess": {"tenant": alice_id}}
    r = await api.client.post(f"{V21}/flavors/{made['id']}/action", headers=ADMIN, json=two)
    assert fault(r, 400) == "Malformed message body: too many body keys"  # one action each
    r = await api.client.get(f"{V21}/flavors/{made['id']}/os-flavor-access", headers=ADMIN)
    assert r.json()["flavor_access"] == []  # nothing was shared


async def test_extra_specs_are_set_shown_and_deleted(api: Api) -> None:
    fid = (await make(api))["id"]
    url = f"{V21}/flavors/{fid}/os-extra_specs"
    r = await api.client.post(
        url, headers=ADMIN, json={"extra_specs": {"hw:cpu_policy": "dedicated", "n": 2}}
    )
    assert r.status_code == 200
    assert r.json() == {"extra_specs": {"hw:cpu_policy": "dedicated", "n": 2}}
    alice = await who(api)
    r = await api.client.get(url, headers=alice.h())
    assert r.json() == {"extra_specs": {"hw:cpu_policy": "dedicated", "n": "2"}}
    r = await api.client.put(f"{url}/n", headers=ADMIN, json={"n": "4"})
    assert r.status_code == 200 and r.json() == {"n": "4"}
    r = await api.client.put(f"{url}/n", headers=ADMIN, json={"m": "4"})
    assert fault(r, 400) == "Request body and URI mismatch"
    r = await api.client.post(url, headers=ADMIN, json={"extra_specs": {"bad/key": "x"}})
    assert "('bad/key' was unexpected)" in fault(r, 400)
    r = await api.client.get(f"{url}/n", headers=alice.h())
    assert r.json() == {"n": "4"}
    r = await api.client.get(f"{V21}/flavors/{fid}", headers=alice.h("2.61"))
    assert r.json()["flavor"]["extra_specs"] == {"hw:cpu_policy": "dedicated", "n": "4"}
    r = await api.client.delete(f"{url}/n", headers=ADMIN)
    assert r.status_code == 200
    r = await api.client.delete(f"{url}/n", headers=ADMIN)
    assert fault(r, 404) == f"Flavor {fid} has no extra specs with key n."
    r = await api.client.get(url, headers=alice.h())
    assert r.json() == {"extra_specs": {"hw:cpu_policy": "dedicated"}}
    r = await api.client.post(
        f"{V21}/flavors/nope/os-extra_specs", headers=ADMIN, json={"extra_specs": {}}
    )
    assert fault(r, 404) == "Flavor nope could not be found."


async def test_deleting_an_unused_flavor_frees_its_name_and_id(api: Api) -> None:
    fid = (await make(api, id="gone"))["id"]
    r = await api.client.delete(f"{V21}/flavors/{fid}", headers=ADMIN)
    assert r.status_code == 202
    fault(await api.client.get(f"{V21}/flavors/{fid}", headers=ADMIN), 404)
    fault(await api.client.delete(f"{V21}/flavors/{fid}", headers=ADMIN), 404)
    async with api.plane.db.read() as s:
        assert await s.get(Flavor, fid) is None
    assert (await make(api, id="gone"))["id"] == "gone"


async def test_a_flavor_in_use_is_deleted_but_its_servers_keep_it(api: Api) -> None:
    alice = await who(api)
    fid = (await make(api, "c1.used", id="used"))["id"]
    await api.plane.worker.inventory.run_once()
    sid = await create(api, alice, flavorRef=fid)
    r = await api.client.delete(f"{V21}/flavors/{fid}", headers=ADMIN)
    assert r.status_code == 202
    assert "c1.used" not in await _names(api, alice)
    fault(await api.client.get(f"{V21}/flavors/{fid}", headers=alice.h()), 404)
    r = await api.client.post(
        f"{V21}/servers",
        headers=alice.h("2.79"),
        json={"server": {"name": "vm", "imageRef": "cirros", "flavorRef": fid, "networks": "none"}},
    )
    assert fault(r, 400) == f"Flavor {fid} could not be found."
    # The server still shows its flavor, and is placed with it (by the flavor's id: a new
    # flavor may take the name).
    again = await make(api, "c1.used", vcpus=8)
    assert again["id"] != fid
    for _ in range(20):
        r = await api.client.get(f"{V21}/servers/{sid}", headers=alice.h("2.79"))
        if r.json()["server"]["status"] == "ACTIVE":
            break
        await api.plane.step()
    server = r.json()["server"]
    assert server["status"] == "ACTIVE"
    assert server["flavor"]["original_name"] == "c1.used" and server["flavor"]["vcpus"] == 2
    fault(await api.client.post(f"{V21}/flavors", headers=ADMIN, json=body("x", id=fid)), 409)


async def test_a_new_flavor_waits_for_the_inventory_then_is_placed(api: Api) -> None:
    plane = api.plane
    async with plane.db.read() as s:
        before = {j.name: j.next_run_at for j in await s.scalars(select(Job))}
    assert all(before[n] is not None for n in before if n.startswith("inventory:"))
    fid = (await make(api, "c1.fresh"))["id"]
    async with plane.db.read() as s:
        jobs = {j.name: j.next_run_at for j in await s.scalars(select(Job))}
        assert not list(
            await s.scalars(select(FlavorMapping).where(FlavorMapping.flavor_id == fid))
        )
    assert all(jobs[n] is None for n in jobs if n.startswith("inventory:"))  # due now
    alice = await who(api)
    sid = await create(api, alice, flavorRef=fid)
    # Placement before any inventory has run: the server waits, it does not fail.
    await plane.worker.placement.run_once()
    r = await api.client.get(f"{V21}/servers/{sid}", headers=alice.h("2.79"))
    assert r.json()["server"]["status"] == "BUILD"
    async with plane.db.read() as s:
        row = await s.get(Server, sid)
        assert row is not None and row.cloud is None
    # The next inventory maps it (it is due), and then the server is placed.
    assert await plane.worker.inventory.run_once() == len(plane.rt.drivers)
    async with plane.db.read() as s:
        mapped = set(
            await s.scalars(select(FlavorMapping.cloud).where(FlavorMapping.flavor_id == fid))
        )
    assert mapped == set(plane.rt.drivers)
    for _ in range(20):
        await plane.step()
        r = await api.client.get(f"{V21}/servers/{sid}", headers=alice.h("2.79"))
        if r.json()["server"]["status"] == "ACTIVE":
            break
    assert r.json()["server"]["status"] == "ACTIVE"


async def test_nul_characters_are_refused_before_the_database(api: Api) -> None:
    fid = (await make(api, **{"os-flavor-access:is_public": False}))["id"]
    sends = [
        ("POST", f"{V21}/flavors/{fid}/os-extra_specs", {"extra_specs": {"k": "a\x00b"}}),
        ("PUT", f"{V21}/flavors/{fid}/os-extra_specs/k", {"k": "\x00"}),
        ("POST", f"{V21}/flavors/{fid}/action", {"addTenantAccess": {"tenant": "p\x00"}}),
        ("POST", f"{V21}/flavors", body("x", id="a\x00")),
    ]
    for method, url, sent in sends:
        r = await api.client.request(method, url, headers=ADMIN, json=sent)
        assert "NUL characters are not allowed" in fault(r, 400), r.text
