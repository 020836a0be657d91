"""Nova os-quota-sets: show, detail, defaults, update and revert, by role and microversion."""

from __future__ import annotations

import pytest

from canopy.domain.context import RequestContext
from canopy.services.servers import CreateServer
from tests.api.conftest import Api, assert_fault
from tests.api.tokens import Caller, caller

URL = "/compute/v2.1/os-quota-sets"

DEFAULTS = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "key_pairs": 100,
    "metadata_items": 128,
    "server_groups": 10,
    "server_group_members": 10,
}
NETWORK = {"fixed_ips": -1, "floating_ips": -1, "security_groups": -1, "security_group_rules": -1}
INJECTION = {
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture
async def alice(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="team", user="alice")


@pytest.fixture
async def eve(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="other", user="eve")


async def test_show_at_each_microversion(api: Api, alice: Caller) -> None:
    expected = {
        "2.1": {**DEFAULTS, **NETWORK, **INJECTION},
        "2.35": {**DEFAULTS, **NETWORK, **INJECTION},
        "2.36": {**DEFAULTS, **INJECTION},
        "2.56": {**DEFAULTS, **INJECTION},
        "2.57": DEFAULTS,
        "2.79": DEFAULTS,
    }
    for version, quotas in expected.items():
        r = await api.client.get(
            f"{URL}/{alice.project_id}", headers={**alice.headers, **mv(version)}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"quota_set": {"id": alice.project_id, **quotas}}, version
    r = await api.client.get(f"{URL}/{alice.project_id}", headers=alice.headers)  # no header: 2.1
    assert set(r.json()["quota_set"]) == {"id", *DEFAULTS, *NETWORK, *INJECTION}


async def test_detail_counts_usage(api: Api, alice: Caller) -> None:
    ctx = RequestContext(project_id=alice.project_id, user_id=alice.user_id)
    group = await api.client.post(
        "/compute/v2.1/os-server-groups",
        json={"server_group": {"name": "g", "policies": ["anti-affinity"]}},
        headers=alice.headers,
    )
    gid = group.json()["server_group"]["id"]
    await api.plane.service.create(
        ctx,
        CreateServer(
            name="vm", flavor="m1.small", image="cirros", min_count=2, max_count=2, group_id=gid
        ),
    )
    await api.plane.service.create(ctx, CreateServer(name="x", flavor="m1.medium", image="cirros"))
    r = await api.client.post(
        "/compute/v2.1/os-keypairs", json={"keypair": {"name": "k"}}, headers=alice.headers
    )
    assert r.status_code == 200

    r = await api.client.get(
        f"{URL}/{alice.project_id}/detail", headers={**alice.headers, **mv("2.57")}
    )
    assert r.status_code == 200, r.text
    body = r.json()["quota_set"]
    assert body["id"] == alice.project_id
    assert set(body) == {"id", *DEFAULTS}
    used = {k: v["in_use"] for k, v in body.items() if k != "id"}
    assert used == {
        "instances": 3,
        "cores": 4,  # 2 x m1.small (1) + m1.medium (2)
        "ram": 2 * 2048 + 4096,
        "key_pairs": 1,
        "metadata_items": 0,
        "server_groups": 1,
        "server_group_members": 2,
    }
    assert all(
        v["reserved"] == 0 and v["limit"] == DEFAULTS[k] for k, v in body.items() if k != "id"
    )
    old = (await api.client.get(f"{URL}/{alice.project_id}/detail", headers=alice.headers)).json()
    assert old["quota_set"]["fixed_ips"] == {"limit": -1, "in_use": 0, "reserved": 0}


async def test_defaults(api: Api, alice: Caller) -> None:
    r = await api.client.get(
        f"{URL}/{alice.project_id}/defaults", headers={**alice.headers, **mv("2.57")}
    )
    assert r.json() == {"quota_set": {"id": alice.project_id, **DEFAULTS}}
    r = await api.client.get(f"{URL}/nope/defaults", headers=alice.headers)
    assert "not a valid project" in assert_fault(r, 400, "badRequest")


async def test_admin_updates_and_reverts(api: Api, alice: Caller) -> None:
    url = f"{URL}/{alice.project_id}"
    r = await api.client.put(
        url, json={"quota_set": {"instances": 5, "cores": "8"}}, headers=mv("2.57")
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"quota_set": {**DEFAULTS, "instances": 5, "cores": 8}}  # no id
    shown = (await api.client.get(url, headers=alice.headers)).json()["quota_set"]
    assert shown["instances"] == 5 and shown["cores"] == 8
    r = await api.client.put(url, json={"quota_set": {"ram": -1}})
    assert r.status_code == 200 and r.json()["quota_set"]["ram"] == -1
    assert "id" not in r.json()["quota_set"] and "fixed_ips" in r.json()["quota_set"]
    # Only below 2.36 may network quotas be set; only below 2.57 file injection ones.
    assert (await api.client.put(url, json={"quota_set": {"floating_ips": 3}})).status_code == 200
    r = await api.client.put(url, json={"quota_set": {"floating_ips": 3}}, headers=mv("2.36"))
    assert "floating_ips" in assert_fault(r, 400, "badRequest")
    r = await api.client.put(url, json={"quota_set": {"injected_files": 3}}, headers=mv("2.56"))
    assert r.status_code == 200
    r = await api.client.put(url, json={"quota_set": {"injected_files": 3}}, headers=mv("2.57"))
    assert_fault(r, 400, "badRequest")

    r = await api.client.delete(url)
    assert r.status_code == 202 and r.content == b""
    shown = (await api.client.get(url, headers={**alice.headers, **mv("2.57")})).json()
    assert shown["quota_set"] == {"id": alice.project_id, **DEFAULTS}


async def test_members_cannot_update_or_see_other_projects(
    api: Api, alice: Caller, eve: Caller
) -> None:
    url = f"{URL}/{alice.project_id}"
    r = await api.client.put(url, json={"quota_set": {"instances": 50}}, headers=alice.headers)
    assert_fault(r, 403, "forbidden")
    r = await api.client.delete(url, headers=alice.headers)
    assert_fault(r, 403, "forbidden")
    r = await api.client.get(url, headers=eve.headers)
    assert "os-quota-sets:show" in assert_fault(r, 403, "forbidden")
    r = await api.client.get(f"{url}/detail", headers=eve.headers)
    assert_fault(r, 403, "forbidden")
    # An admin sees any project's; an unknown project is a 400, as in Nova.
    assert (await api.client.get(url)).status_code == 200
    r = await api.client.get(f"{URL}/0123456789abcdef")
    assert "not a valid project" in assert_fault(r, 400, "badRequest")
    r = await api.client.put(f"{URL}/0123456789abcdef", json={"quota_set": {"instances": 1}})
    assert_fault(r, 400, "badRequest")


async def test_update_validation(api: Api, alice: Caller) -> None:
    url = f"{URL}/{alice.project_id}"
    for body in (
        {"quota_set": {"instances": -2}},
        {"quota_set": {"instances": "many"}},
        {"quota_set": {"instances": 1.5}},
        {"quota_set": {"instances": True}},
        {"quota_set": {"instances": 2**31}},
        {"quota_set": {"unicorns": 1}},
        {"quota_set": {"instances": 1, "force": "maybe"}},
        {"quota_set": []},
        {"quota": {"instances": 1}},
        {},
    ):
        r = await api.client.put(url, json=body)
        assert_fault(r, 400, "badRequest")
    shown = (await api.client.get(url)).json()["quota_set"]
    assert shown["instances"] == 10  # nothing was written
    r = await api.client.put(f"{url}?user_id={alice.user_id}", json={"quota_set": {"instances": 1}})
    assert "per project" in assert_fault(r, 400, "badRequest")


async def test_limits_may_not_go_below_usage_unless_forced(api: Api, alice: Caller) -> None:
    ctx = RequestContext(project_id=alice.project_id, user_id=alice.user_id)
    await api.plane.service.create(
        ctx, CreateServer(name="vm", flavor="m1.small", image="cirros", min_count=3, max_count=3)
    )
    url = f"{URL}/{alice.project_id}"
    r = await api.client.put(url, json={"quota_set": {"instances": 2}})
    assert "already used and reserved 3" in assert_fault(r, 400, "badRequest")
    r = await api.client.put(url, json={"quota_set": {"instances": 2, "force": True}})
    assert r.status_code == 200 and r.json()["quota_set"]["instances"] == 2
    r = await api.client.put(url, json={"quota_set": {"instances": 3, "force": "False"}})
    assert r.status_code == 200


async def test_new_limits_are_enforced_at_server_create(api: Api, alice: Caller) -> None:
    url = f"{URL}/{alice.project_id}"
    assert (await api.client.put(url, json={"quota_set": {"instances": 1}})).status_code == 200
    ctx = RequestContext(project_id=alice.project_id, user_id=alice.user_id)
    await api.plane.service.create(ctx, CreateServer(name="a", flavor="m1.small", image="cirros"))
    from canopy.domain.errors import QuotaError

    with pytest.raises(QuotaError):
        await api.plane.service.create(
            ctx, CreateServer(name="b", flavor="m1.small", image="cirros")
        )


async def test_strict_query_from_2_75(api: Api, alice: Caller) -> None:
    url = f"{URL}/{alice.project_id}"
    h = alice.headers
    assert (
        await api.client.get(f"{url}?colour=red", headers={**h, **mv("2.74")})
    ).status_code == 200
    r = await api.client.get(f"{url}?colour=red", headers={**h, **mv("2.75")})
    assert_fault(r, 400, "badRequest")
    assert (
        await api.client.get(f"{url}?user_id=x", headers={**h, **mv("2.75")})
    ).status_code == 200


async def test_nul_characters_are_refused_not_crashed(api: Api, alice: Caller) -> None:
    for path in (f"{URL}/a%00b", f"{URL}/a%00b/detail", f"{URL}/a%00b/defaults"):
        r = await api.client.get(path)
        assert_fault(r, 400, "badRequest")
    r = await api.client.get(f"{URL}/{alice.project_id}/detail?user_id=a%00b")
    assert r.status_code == 200
    r = await api.client.put(f"{URL}/a%00b", json={"quota_set": {"instances": 1}})
    assert_fault(r, 400, "badRequest")
