"""Projects and users, as `openstack project ...` and `openstack user ...` send them:
admin-only management, and what a non-admin may still see of themselves."""

from __future__ import annotations

from canopy.bootstrap import seed
from canopy.domain.context import RequestContext
from canopy.services.servers import CreateServer, ServerService

from .conftest import BASE, V3, Keystone, assert_keystone_fault


async def test_project_crud(ks: Keystone) -> None:
    r = await ks.client.post(
        f"{V3}/projects", json={"project": {"name": "p2", "description": "two", "enabled": True}}
    )
    assert r.status_code == 201, r.text
    p = r.json()["project"]
    assert p["name"] == "p2" and p["description"] == "two" and p["enabled"] is True
    assert p["domain_id"] == "default" and p["parent_id"] == "default"
    assert p["is_domain"] is False
    assert p["links"]["self"] == f"{BASE}{V3}/projects/{p['id']}"

    r = await ks.client.get(f"{V3}/projects")
    assert {x["name"] for x in r.json()["projects"]} == {"admin", "p2"}
    assert r.json()["links"]["next"] is None
    r = await ks.client.get(f"{V3}/projects", params={"name": "p2", "domain_id": "default"})
    assert [x["id"] for x in r.json()["projects"]] == [p["id"]]
    r = await ks.client.get(f"{V3}/projects", params={"domain_id": "other"})
    assert r.json()["projects"] == []
    r = await ks.client.get(f"{V3}/projects", params={"enabled": "false"})
    assert r.json()["projects"] == []

    # a name is not an id: the clean 404 makes clients fall back to ?name=
    assert "Could not find project: p2" in assert_keystone_fault(
        await ks.client.get(f"{V3}/projects/p2"), 404
    )
    r = await ks.client.patch(
        f"{V3}/projects/{p['id']}", json={"project": {"description": "deux", "enabled": False}}
    )
    assert r.status_code == 200
    assert r.json()["project"]["description"] == "deux"
    assert r.json()["project"]["enabled"] is False
    shown = (await ks.client.get(f"{V3}/projects/{p['id']}")).json()["project"]
    assert shown["description"] == "deux"

    assert_keystone_fault(
        await ks.client.post(f"{V3}/projects", json={"project": {"name": "p2"}}), 409
    )
    assert_keystone_fault(
        await ks.client.post(f"{V3}/projects", json={"project": {"name": ""}}), 400
    )
    assert_keystone_fault(
        await ks.client.post(
            f"{V3}/projects", json={"project": {"name": "x", "domain_id": "elsewhere"}}
        ),
        400,
    )
    assert (await ks.client.delete(f"{V3}/projects/{p['id']}")).status_code == 204
    assert_keystone_fault(await ks.client.get(f"{V3}/projects/{p['id']}"), 404)
    assert_keystone_fault(await ks.client.delete(f"{V3}/projects/{p['id']}"), 404)


async def test_project_list_pages_with_limit_and_marker(ks: Keystone) -> None:
    for i in range(4):
        r = await ks.client.post(f"{V3}/projects", json={"project": {"name": f"pp{i}"}})
        assert r.status_code == 201
    seen: list[str] = []
    url: str | None = f"{V3}/projects?limit=2"
    while url:
        body = (await ks.client.get(url)).json()
        seen += [p["name"] for p in body["projects"]]
        url = body["links"]["next"]
        assert url is None or url.startswith(BASE)
    assert sorted(seen) == ["admin", "pp0", "pp1", "pp2", "pp3"]


async def test_a_project_with_servers_is_not_deleted(ks: Keystone) -> None:
    r = await ks.client.post(f"{V3}/projects", json={"project": {"name": "busy"}})
    pid = r.json()["project"]["id"]
    servers = ServerService(ks.db, ks.settings, ks.clock)
    await seed(ks.db, ks.settings, ks.clock)  # flavors and images for the server
    ctx = RequestContext(project_id=pid, user_id=ks.admin.user_id)
    await servers.create(ctx, CreateServer(name="vm", flavor="m1.tiny", image="cirros"))
    message = assert_keystone_fault(await ks.client.delete(f"{V3}/projects/{pid}"), 409)
    assert "still has 1 server" in message


async def test_user_crud(ks: Keystone) -> None:
    pid = (await ks.client.post(f"{V3}/projects", json={"project": {"name": "p2"}})).json()[
        "project"
    ]["id"]
    r = await ks.client.post(
        f"{V3}/users",
        json={
            "user": {
                "name": "bob",
                "password": "x",
                "default_project_id": pid,
                "email": "bob@example.com",
                "enabled": True,
            }
        },
    )
    assert r.status_code == 201, r.text
    u = r.json()["user"]
    assert u["name"] == "bob" and u["domain_id"] == "default" and u["enabled"] is True
    assert u["default_project_id"] == pid and u["email"] == "bob@example.com"
    assert u["password_expires_at"] is None
    assert "password" not in u and "password_hash" not in u

    r = await ks.client.get(f"{V3}/users", params={"name": "bob"})
    assert [x["id"] for x in r.json()["users"]] == [u["id"]]
    r = await ks.client.get(f"{V3}/users")
    assert {x["name"] for x in r.json()["users"]} == {"admin", "bob"}
    assert_keystone_fault(await ks.client.get(f"{V3}/users/bob"), 404)

    r = await ks.client.patch(
        f"{V3}/users/{u['id']}", json={"user": {"email": "b2@example.com", "name": "robert"}}
    )
    assert r.status_code == 200
    assert r.json()["user"]["email"] == "b2@example.com"
    assert r.json()["user"]["name"] == "robert"

    # bob has no role yet: he can log in (unscoped) but not into p2
    assert_keystone_fault(await ks.login("robert", "x", project="p2"), 401)
    assert (await ks.login("robert", "x")).status_code == 201

    assert_keystone_fault(
        await ks.client.post(f"{V3}/users", json={"user": {"name": "robert", "password": "y"}}),
        409,
    )
    assert_keystone_fault(
        await ks.client.post(
            f"{V3}/users", json={"user": {"name": "z", "default_project_id": "missing"}}
        ),
        400,
    )
    assert (await ks.client.delete(f"{V3}/users/{u['id']}")).status_code == 204
    assert_keystone_fault(await ks.client.get(f"{V3}/users/{u['id']}"), 404)
    assert_keystone_fault(await ks.login("robert", "x"), 401)


async def test_a_user_created_without_a_password_cannot_log_in(ks: Keystone) -> None:
    r = await ks.client.post(f"{V3}/users", json={"user": {"name": "nopw"}})
    assert r.status_code == 201
    assert_keystone_fault(await ks.login("nopw", ""), 401)


async def test_a_new_password_revokes_the_old_tokens(ks: Keystone) -> None:
    bob = await ks.user("bob", "old")
    r = await ks.client.patch(f"{V3}/users/{bob.user_id}", json={"user": {"password": "new"}})
    assert r.status_code == 200
    assert (await ks.anon.get(f"{V3}/auth/projects", headers=bob.headers)).status_code == 401
    assert_keystone_fault(await ks.login("bob", "old", project="demo"), 401)
    assert (await ks.login("bob", "new", project="demo")).status_code == 201


async def test_a_user_changes_their_own_password(ks: Keystone) -> None:
    bob = await ks.user("bob", "old")
    url = f"{V3}/users/{bob.user_id}/password"
    wrong = {"user": {"original_password": "nope", "password": "new"}}
    assert_keystone_fault(await ks.anon.post(url, json=wrong, headers=bob.headers), 401)
    right = {"user": {"original_password": "old", "password": "new"}}
    assert (await ks.anon.post(url, json=right, headers=bob.headers)).status_code == 204
    assert (await ks.login("bob", "new", project="demo")).status_code == 201
    other = f"{V3}/users/{ks.admin.user_id}/password"
    assert_keystone_fault(await ks.anon.post(other, json=right, headers=bob.headers), 401)


async def test_members_and_readers_may_not_manage_identity(ks: Keystone) -> None:
    admin_project = ks.admin.project_id
    for role in ("member", "reader"):
        who = await ks.user(f"u-{role}", "pw", role=role)
        h = who.headers
        calls = [
            ks.anon.get(f"{V3}/projects", headers=h),
            ks.anon.post(f"{V3}/projects", json={"project": {"name": "nope"}}, headers=h),
            ks.anon.get(f"{V3}/projects/{admin_project}", headers=h),
            ks.anon.patch(
                f"{V3}/projects/{who.project_id}",
                json={"project": {"description": "mine now"}},
                headers=h,
            ),
            ks.anon.delete(f"{V3}/projects/{who.project_id}", headers=h),
            ks.anon.get(f"{V3}/users", headers=h),
            ks.anon.post(f"{V3}/users", json={"user": {"name": "x"}}, headers=h),
            ks.anon.get(f"{V3}/users/{ks.admin.user_id}", headers=h),
            ks.anon.patch(f"{V3}/users/{who.user_id}", json={"user": {"name": "y"}}, headers=h),
            ks.anon.delete(f"{V3}/users/{ks.admin.user_id}", headers=h),
            ks.anon.get(f"{V3}/users/{ks.admin.user_id}/projects", headers=h),
            ks.anon.get(f"{V3}/roles", headers=h),
            ks.anon.get(f"{V3}/role_assignments", headers=h),
            ks.anon.put(
                f"{V3}/projects/{admin_project}/users/{who.user_id}/roles/anything",
                headers=h,
            ),
        ]
        for call in calls:
            r = await call
            message = assert_keystone_fault(r, 403)
            assert "not authorized" in message, (r.request.method, r.request.url)


async def test_a_member_sees_themselves_and_their_projects(ks: Keystone) -> None:
    bob = await ks.user("bob", "pw", project="p1")
    await ks.user("bob", "pw", project="p2", role="reader")
    h = bob.headers
    me = await ks.anon.get(f"{V3}/users/{bob.user_id}", headers=h)
    assert me.status_code == 200 and me.json()["user"]["name"] == "bob"
    mine = await ks.anon.get(f"{V3}/users/{bob.user_id}/projects", headers=h)
    assert sorted(p["name"] for p in mine.json()["projects"]) == ["p1", "p2"]
    scoped = await ks.anon.get(f"{V3}/projects/{bob.project_id}", headers=h)
    assert scoped.status_code == 200 and scoped.json()["project"]["name"] == "p1"
    groups = await ks.anon.get(f"{V3}/users/{bob.user_id}/groups", headers=h)
    assert groups.json()["groups"] == []


async def test_domains_only_default(ks: Keystone) -> None:
    r = await ks.client.get(f"{V3}/domains")
    assert [d["id"] for d in r.json()["domains"]] == ["default"]
    r = await ks.client.get(f"{V3}/domains", params={"name": "Default"})
    assert [d["name"] for d in r.json()["domains"]] == ["Default"]
    r = await ks.client.get(f"{V3}/domains", params={"name": "Other"})
    assert r.json()["domains"] == []
    r = await ks.client.get(f"{V3}/domains/default")
    assert r.json()["domain"]["name"] == "Default" and r.json()["domain"]["enabled"] is True
    assert_keystone_fault(await ks.client.get(f"{V3}/domains/Default"), 404)
    assert_keystone_fault(await ks.anon.get(f"{V3}/domains"), 401)


async def test_unknown_paths_and_methods_use_keystones_fault(ks: Keystone) -> None:
    assert_keystone_fault(await ks.client.get(f"{V3}/nothing-here"), 404)
    assert_keystone_fault(await ks.client.put(f"{V3}/projects"), 405)
    r = await ks.client.post(
        f"{V3}/projects", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert_keystone_fault(r, 400)
