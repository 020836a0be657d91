"""Roles, grants and `GET /v3/role_assignments`, as `openstack role ...` sends them."""

from __future__ import annotations

from canopy.services.identity import ROLE_IDS

from .conftest import V3, Keystone, assert_keystone_fault


async def test_the_three_roles_with_stable_ids(ks: Keystone) -> None:
    r = await ks.client.get(f"{V3}/roles")
    assert [(x["id"], x["name"]) for x in r.json()["roles"]] == [
        (ROLE_IDS["admin"], "admin"),
        (ROLE_IDS["member"], "member"),
        (ROLE_IDS["reader"], "reader"),
    ]
    r = await ks.client.get(f"{V3}/roles", params={"name": "member"})
    assert [x["id"] for x in r.json()["roles"]] == [ROLE_IDS["member"]]
    r = await ks.client.get(f"{V3}/roles/{ROLE_IDS['reader']}")
    assert r.json()["role"]["name"] == "reader"
    # by name it is a 404, which makes clients look it up with ?name=
    assert_keystone_fault(await ks.client.get(f"{V3}/roles/member"), 404)


async def test_grant_check_and_revoke(ks: Keystone) -> None:
    bob = await ks.user("bob", "pw", project="p1")
    p2 = (await ks.client.post(f"{V3}/projects", json={"project": {"name": "p2"}})).json()[
        "project"
    ]["id"]
    url = f"{V3}/projects/{p2}/users/{bob.user_id}/roles/{ROLE_IDS['member']}"
    assert (await ks.client.head(url)).status_code == 404  # HEAD: no body
    assert (await ks.client.put(url)).status_code == 204
    assert (await ks.client.put(url)).status_code == 204  # idempotent
    assert (await ks.client.head(url)).status_code == 204
    assert (await ks.login("bob", "pw", project="p2")).status_code == 201
    r = await ks.client.get(f"{V3}/projects/{p2}/users/{bob.user_id}/roles")
    assert [x["name"] for x in r.json()["roles"]] == ["member"]
    assert (await ks.client.delete(url)).status_code == 204
    assert_keystone_fault(await ks.client.delete(url), 404)
    assert_keystone_fault(await ks.login("bob", "pw", project="p2"), 401)

    for bad in (
        f"{V3}/projects/nope/users/{bob.user_id}/roles/{ROLE_IDS['member']}",
        f"{V3}/projects/{p2}/users/nope/roles/{ROLE_IDS['member']}",
        f"{V3}/projects/{p2}/users/{bob.user_id}/roles/nope",
    ):
        assert_keystone_fault(await ks.client.put(bad), 404)


async def test_role_assignments_with_filters_and_names(ks: Keystone) -> None:
    bob = await ks.user("bob", "pw", project="p1")
    await ks.user("bob", "pw", project="p2", role="reader")
    carol = await ks.user("carol", "pw", project="p2", role="admin")

    r = await ks.client.get(f"{V3}/role_assignments")
    rows = r.json()["role_assignments"]
    assert len(rows) == 4  # admin on admin, bob x2, carol
    one = next(a for a in rows if a["user"]["id"] == carol.user_id)
    assert one == {
        "role": {"id": ROLE_IDS["admin"]},
        "user": {"id": carol.user_id},
        "scope": {"project": {"id": carol.project_id}},
        "links": {
            "assignment": f"http://canopy.test{V3}/projects/{carol.project_id}/users/"
            f"{carol.user_id}/roles/{ROLE_IDS['admin']}"
        },
    }

    r = await ks.client.get(
        f"{V3}/role_assignments",
        params={"scope.project.id": carol.project_id, "include_names": "True"},
    )
    named = sorted(
        (a["user"]["name"], a["role"]["name"], a["scope"]["project"]["name"])
        for a in r.json()["role_assignments"]
    )
    assert named == [("bob", "reader", "p2"), ("carol", "admin", "p2")]
    first = r.json()["role_assignments"][0]
    assert first["user"]["domain"] == {"id": "default", "name": "Default"}
    assert first["scope"]["project"]["domain"] == {"id": "default", "name": "Default"}

    r = await ks.client.get(
        f"{V3}/role_assignments", params={"user.id": bob.user_id, "effective": "True"}
    )
    assert len(r.json()["role_assignments"]) == 2
    r = await ks.client.get(
        f"{V3}/role_assignments",
        params={"user.id": bob.user_id, "role.id": ROLE_IDS["member"]},
    )
    assert [a["scope"]["project"]["id"] for a in r.json()["role_assignments"]] == [bob.project_id]
    for empty in ({"role.id": "nope"}, {"group.id": "g"}, {"scope.domain.id": "default"}):
        r = await ks.client.get(f"{V3}/role_assignments", params=empty)
        assert r.json()["role_assignments"] == [], empty


async def test_services_endpoints_and_regions_mirror_the_catalog(ks: Keystone) -> None:
    services = (await ks.client.get(f"{V3}/services")).json()["services"]
    assert {s["type"] for s in services} == {
        "identity",
        "compute",
        "image",
        "reservation",
        "orchestration",
    }
    compute = next(s for s in services if s["type"] == "compute")
    r = await ks.client.get(f"{V3}/services/{compute['id']}")
    assert r.json()["service"]["name"] == "nova"
    r = await ks.client.get(f"{V3}/services", params={"type": "image"})
    assert [s["name"] for s in r.json()["services"]] == ["glance"]
    r = await ks.client.get(
        f"{V3}/endpoints", params={"service_id": compute["id"], "interface": "public"}
    )
    (ep,) = r.json()["endpoints"]
    assert ep["url"].endswith("/compute/v2.1") and ep["region_id"] == "RegionTest"
    assert (await ks.client.get(f"{V3}/endpoints/{ep['id']}")).status_code == 200
    assert_keystone_fault(await ks.client.get(f"{V3}/endpoints/nope"), 404)
    regions = (await ks.client.get(f"{V3}/regions")).json()["regions"]
    assert [r["id"] for r in regions] == ["RegionTest"]
