"""Nova os-server-groups: policies across clouds, members, tenancy, quota, microversions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from canopy.domain.context import RequestContext
from canopy.services.quotas import update
from canopy.services.servers import CreateServer
from tests.api.conftest import Api, assert_fault
from tests.api.tokens import Caller, caller

URL = "/compute/v2.1/os-server-groups"


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture
async def alice(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="team", user="alice")


@pytest.fixture
async def eve(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="other", user="eve")


async def create(
    api: Api, who: Caller, body: dict[str, Any], version: str = "2.1"
) -> httpx.Response:
    return await api.client.post(
        URL, json={"server_group": body}, headers={**who.headers, **mv(version)}
    )


async def boot_in_group(api: Api, who: Caller, group_id: str, n: int) -> list[str]:
    ctx = RequestContext(project_id=who.project_id, user_id=who.user_id)
    req = CreateServer(
        name="member",
        flavor="m1.small",
        image="cirros",
        group_id=group_id,
        min_count=n,
        max_count=n,
    )
    return [s.id for s in await api.plane.service.create(ctx, req)]


async def test_create_show_list_delete_before_2_64(api: Api, alice: Caller) -> None:
    r = await create(api, alice, {"name": "g1", "policies": ["anti-affinity"]})
    assert r.status_code == 200, r.text
    group = r.json()["server_group"]
    assert group == {
        "id": group["id"],
        "name": "g1",
        "policies": ["anti-affinity"],
        "metadata": {},
        "members": [],
    }
    r = await api.client.get(f"{URL}/{group['id']}", headers=alice.headers)
    assert r.json() == {"server_group": group}
    r = await api.client.get(URL, headers=alice.headers)
    assert r.json() == {"server_groups": [group]}

    r = await api.client.delete(f"{URL}/{group['id']}", headers=alice.headers)
    assert r.status_code == 204 and r.content == b""
    r = await api.client.get(f"{URL}/{group['id']}", headers=alice.headers)
    assert group["id"] in assert_fault(r, 404, "itemNotFound")
    r = await api.client.delete(f"{URL}/{group['id']}", headers=alice.headers)
    assert_fault(r, 404, "itemNotFound")


async def test_views_by_microversion(api: Api, alice: Caller) -> None:
    gid = (await create(api, alice, {"name": "g", "policies": ["affinity"]})).json()[
        "server_group"
    ]["id"]
    views = {}
    for v in ("2.12", "2.13", "2.63", "2.64", "2.79"):
        r = await api.client.get(f"{URL}/{gid}", headers={**alice.headers, **mv(v)})
        views[v] = r.json()["server_group"]
    assert set(views["2.12"]) == {"id", "name", "policies", "metadata", "members"}
    assert views["2.13"]["project_id"] == alice.project_id
    assert views["2.13"]["user_id"] == alice.user_id
    assert set(views["2.63"]) == set(views["2.13"])
    assert set(views["2.64"]) == {
        "id",
        "name",
        "policy",
        "rules",
        "members",
        "project_id",
        "user_id",
    }
    assert views["2.64"]["policy"] == "affinity" and views["2.64"]["rules"] == {}
    assert views["2.79"] == views["2.64"]


async def test_policy_and_rules_from_2_64(api: Api, alice: Caller) -> None:
    r = await create(api, alice, {"name": "g", "policy": "soft-anti-affinity"}, "2.64")
    assert r.status_code == 200, r.text
    assert r.json()["server_group"]["policy"] == "soft-anti-affinity"
    r = await create(
        api,
        alice,
        {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 1}},
        "2.64",
    )
    assert r.status_code == 200
    r = await create(
        api,
        alice,
        {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 1}},
        "2.64",
    )
    assert "Only anti-affinity" in assert_fault(r, 400, "badRequest")
    r = await create(
        api,
        alice,
        {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 3}},
        "2.64",
    )
    assert_fault(r, 409, "conflictingRequest")
    for bad in (
        {"name": "g", "policies": ["affinity"]},  # the old form is gone
        {"name": "g"},
        {"name": "g", "policy": "cosy"},
        {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}},
        {"name": "g", "policy": "anti-affinity", "rules": {"other": 1}},
        {"name": "g", "policy": "anti-affinity", "rules": []},
    ):
        r = await create(api, alice, bad, "2.64")
        assert_fault(r, 400, "badRequest")


async def test_bad_bodies_before_2_64(api: Api, alice: Caller) -> None:
    for bad, version in (
        ({"name": "g", "policies": ["soft-affinity"]}, "2.14"),  # soft ones from 2.15
        ({"name": "g", "policies": ["affinity", "anti-affinity"]}, "2.1"),
        ({"name": "g", "policies": []}, "2.1"),
        ({"name": "g", "policies": "affinity"}, "2.1"),
        ({"name": "g", "policy": "affinity"}, "2.1"),
        ({"policies": ["affinity"]}, "2.1"),
        ({"name": "", "policies": ["affinity"]}, "2.1"),
        ({"name": " g", "policies": ["affinity"]}, "2.1"),
        ({"name": 5, "policies": ["affinity"]}, "2.1"),
    ):
        r = await create(api, alice, bad, version)
        assert_fault(r, 400, "badRequest")
    r = await create(api, alice, {"name": "g", "policies": ["soft-affinity"]}, "2.15")
    assert r.status_code == 200
    r = await api.client.post(URL, json={"server_group": "g"}, headers=alice.headers)
    assert_fault(r, 400, "badRequest")
    r = await api.client.post(URL, json={}, headers=alice.headers)
    assert_fault(r, 400, "badRequest")


async def test_members_are_the_live_servers_of_the_group(api: Api, alice: Caller) -> None:
    gid = (await create(api, alice, {"name": "g", "policies": ["anti-affinity"]})).json()[
        "server_group"
    ]["id"]
    ids = await boot_in_group(api, alice, gid, 2)
    body = (await api.client.get(f"{URL}/{gid}", headers=alice.headers)).json()
    assert sorted(body["server_group"]["members"]) == sorted(ids)
    listed = (await api.client.get(URL, headers=alice.headers)).json()["server_groups"]
    assert sorted(listed[0]["members"]) == sorted(ids)

    # Anti-affinity over clouds: the two members land on different clouds.
    async def placed() -> bool:
        servers = {s.id: s for s in await api.plane.servers()}
        return all(servers[i].cloud is not None for i in ids)

    await api.plane.run_until(placed)
    clouds = {s.cloud for s in await api.plane.servers() if s.id in ids}
    assert clouds == {"private", "public"}

    ctx = RequestContext(project_id=alice.project_id, user_id=alice.user_id)
    await api.plane.service.delete(ctx, ids[0])

    async def gone() -> bool:
        return all(s.deleted for s in await api.plane.servers() if s.id == ids[0])

    await api.plane.run_until(gone)
    body = (await api.client.get(f"{URL}/{gid}", headers=alice.headers)).json()
    assert body["server_group"]["members"] == [ids[1]]

    # Deleting the group leaves its servers in place, outside any group.
    assert (await api.client.delete(f"{URL}/{gid}", headers=alice.headers)).status_code == 204
    [server] = [s for s in await api.plane.servers() if s.id == ids[1]]
    assert server.group_id is None and not server.deleted


async def test_other_projects_groups_are_invisible(api: Api, alice: Caller, eve: Caller) -> None:
    gid = (await create(api, alice, {"name": "g", "policies": ["affinity"]})).json()[
        "server_group"
    ]["id"]
    r = await api.client.get(f"{URL}/{gid}", headers=eve.headers)
    assert_fault(r, 404, "itemNotFound")
    r = await api.client.delete(f"{URL}/{gid}", headers=eve.headers)
    assert_fault(r, 404, "itemNotFound")
    assert (await api.client.get(URL, headers=eve.headers)).json() == {"server_groups": []}
    # all_projects is for admins; a member asking gets their own project's, as in Nova.
    r = await api.client.get(f"{URL}?all_projects=True", headers=eve.headers)
    assert r.json() == {"server_groups": []}
    # The admin sees it by id and in all_projects, not in their own project's list.
    assert (await api.client.get(f"{URL}/{gid}")).status_code == 200
    assert (await api.client.get(URL)).json() == {"server_groups": []}
    everything = (await api.client.get(f"{URL}?all_projects=1")).json()["server_groups"]
    assert [g["id"] for g in everything] == [gid]


async def test_limit_and_offset(api: Api, alice: Caller) -> None:
    ids = []
    for n in range(5):
        r = await create(api, alice, {"name": f"g{n}", "policies": ["affinity"]})
        ids.append(r.json()["server_group"]["id"])
        api.plane.clock.advance(1)  # listed oldest first

    async def page(q: str) -> list[str]:
        r = await api.client.get(f"{URL}{q}", headers=alice.headers)
        assert r.status_code == 200, r.text
        return [g["id"] for g in r.json()["server_groups"]]

    assert await page("") == ids
    assert await page("?limit=2") == ids[:2]
    assert await page("?limit=2&offset=2") == ids[2:4]
    assert await page("?offset=4") == ids[4:]
    assert await page("?limit=0") == ids  # Nova: 0 means the maximum
    for bad in ("?limit=-1", "?offset=x"):
        r = await api.client.get(f"{URL}{bad}", headers=alice.headers)
        assert_fault(r, 400, "badRequest")
    r = await api.client.get(f"{URL}?colour=red", headers={**alice.headers, **mv("2.75")})
    assert_fault(r, 400, "badRequest")
    r = await api.client.get(f"{URL}?colour=red", headers={**alice.headers, **mv("2.74")})
    assert r.status_code == 200


async def test_server_groups_quota(api: Api, alice: Caller) -> None:
    async with api.plane.db.session() as s:
        await update(s, api.plane.settings, alice.project_id, "", {"server_groups": 1})
    assert (await create(api, alice, {"name": "a", "policies": ["affinity"]})).status_code == 200
    r = await create(api, alice, {"name": "b", "policies": ["affinity"]})
    assert "too many server groups" in assert_fault(r, 403, "forbidden")


async def test_server_group_members_quota_is_enforced(api: Api, alice: Caller) -> None:
    async with api.plane.db.session() as s:
        await update(s, api.plane.settings, alice.project_id, "", {"server_group_members": 2})
    gid = (await create(api, alice, {"name": "g", "policies": ["affinity"]})).json()[
        "server_group"
    ]["id"]
    headers = {**alice.headers, **mv("2.79")}

    async def boot(n: int) -> httpx.Response:
        body = {
            "server": {
                "name": "vm",
                "imageRef": "cirros",
                "flavorRef": "1",
                "networks": "none",
                "min_count": n,
                "max_count": n,
            },
            "os:scheduler_hints": {"group": gid},
        }
        return await api.client.post("/compute/v2.1/servers", json=body, headers=headers)

    # Two at once would overfill a group of limit 2 that has one member already.
    assert (await boot(1)).status_code == 202
    r = await boot(2)
    assert assert_fault(r, 403, "forbidden") == "Quota exceeded, too many servers in group"
    assert (await boot(1)).status_code == 202
    r = await boot(1)
    assert assert_fault(r, 403, "forbidden") == "Quota exceeded, too many servers in group"
    r = await api.client.get(f"{URL}/{gid}", headers=alice.headers)
    assert len(r.json()["server_group"]["members"]) == 2
    # A server outside the group is not limited by it.
    plain = {"server": {"name": "free", "imageRef": "cirros", "flavorRef": "1"}}
    r = await api.client.post("/compute/v2.1/servers", json=plain, headers=alice.headers)
    assert r.status_code == 202, r.text


async def test_readers_cannot_create(api: Api) -> None:
    reader = await caller(api.plane.db, api.plane.clock, project="team", user="rita", role="reader")
    r = await create(api, reader, {"name": "g", "policies": ["affinity"]})
    assert_fault(r, 403, "forbidden")


async def test_nul_characters_are_refused_not_crashed(api: Api, alice: Caller) -> None:
    r = await api.client.get(f"{URL}/a%00b", headers=alice.headers)
    assert_fault(r, 404, "itemNotFound")
    r = await api.client.delete(f"{URL}/a%00b", headers=alice.headers)
    assert_fault(r, 404, "itemNotFound")
    r = await create(api, alice, {"name": "a\u0000b", "policies": ["affinity"]})
    assert_fault(r, 400, "badRequest")
