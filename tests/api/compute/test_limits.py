"""Nova limits: the caller's project's absolute limits and usage, by microversion."""

from __future__ import annotations

import pytest

from canopy.domain.context import RequestContext
from canopy.services.quotas import update
from canopy.services.servers import CreateServer
from tests.api.conftest import Api, assert_fault
from tests.api.tokens import Caller, caller

URL = "/compute/v2.1/limits"

BASE = {
    "maxServerMeta": 128,
    "maxTotalCores": 20,
    "maxTotalInstances": 10,
    "maxTotalKeypairs": 100,
    "maxTotalRAMSize": 51200,
    "maxServerGroups": 10,
    "maxServerGroupMembers": 10,
    "totalCoresUsed": 0,
    "totalInstancesUsed": 0,
    "totalRAMUsed": 0,
    "totalServerGroupsUsed": 0,
}
PERSONALITY = {"maxPersonality": 5, "maxPersonalitySize": 10240}
NETWORK = {
    "maxSecurityGroupRules": -1,
    "maxSecurityGroups": -1,
    "maxTotalFloatingIps": -1,
    "totalSecurityGroupsUsed": 0,
    "totalFloatingIpsUsed": 0,
}


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture
async def alice(api: Api) -> Caller:
    return await caller(api.plane.db, api.plane.clock, project="team", user="alice")


async def test_absolute_limits_at_each_microversion(api: Api, alice: Caller) -> None:
    # The bodies of Nova's api-samples for limits (2.1, 2.36, 2.39, 2.57).
    expected = {
        "2.1": {**BASE, **PERSONALITY, **NETWORK, "maxImageMeta": 128},
        "2.35": {**BASE, **PERSONALITY, **NETWORK, "maxImageMeta": 128},
        "2.36": {**BASE, **PERSONALITY, "maxImageMeta": 128},
        "2.38": {**BASE, **PERSONALITY, "maxImageMeta": 128},
        "2.39": {**BASE, **PERSONALITY},
        "2.56": {**BASE, **PERSONALITY},
        "2.57": BASE,
        "2.79": BASE,
    }
    for version, absolute in expected.items():
        r = await api.client.get(URL, headers={**alice.headers, **mv(version)})
        assert r.status_code == 200, r.text
        assert r.json() == {"limits": {"rate": [], "absolute": absolute}}, version


async def test_usage_and_the_projects_own_limits(api: Api, alice: Caller) -> None:
    async with api.plane.db.session() as s:
        await update(s, api.plane.settings, alice.project_id, "", {"instances": 4, "cores": -1})
    ctx = RequestContext(project_id=alice.project_id, user_id=alice.user_id)
    await api.plane.service.create(
        ctx, CreateServer(name="vm", flavor="m1.medium", image="cirros", min_count=2, max_count=2)
    )
    r = await api.client.post(
        "/compute/v2.1/os-server-groups",
        json={"server_group": {"name": "g", "policies": ["affinity"]}},
        headers=alice.headers,
    )
    assert r.status_code == 200
    # OSC's `limits show --absolute` sends reserved=False (and no microversion).
    r = await api.client.get(f"{URL}?reserved=False", headers=alice.headers)
    absolute = r.json()["limits"]["absolute"]
    assert absolute["maxTotalInstances"] == 4 and absolute["maxTotalCores"] == -1
    assert absolute["totalInstancesUsed"] == 2
    assert absolute["totalCoresUsed"] == 4
    assert absolute["totalRAMUsed"] == 8192
    assert absolute["totalServerGroupsUsed"] == 1
    r = await api.client.get(f"{URL}?reserved=1", headers={**alice.headers, **mv("2.79")})
    assert r.status_code == 200


async def test_tenant_id_is_for_admins(api: Api, alice: Caller) -> None:
    async with api.plane.db.session() as s:
        await update(s, api.plane.settings, alice.project_id, "", {"instances": 7})
    r = await api.client.get(f"{URL}?tenant_id={alice.project_id}")
    assert r.json()["limits"]["absolute"]["maxTotalInstances"] == 7
    mine = (await api.client.get(URL)).json()["limits"]["absolute"]
    assert mine["maxTotalInstances"] == 10  # the admin's own project
    eve = await caller(api.plane.db, api.plane.clock, project="other", user="eve")
    r = await api.client.get(f"{URL}?tenant_id={alice.project_id}", headers=eve.headers)
    assert "other_project" in assert_fault(r, 403, "forbidden")
    r = await api.client.get(f"{URL}?tenant_id={eve.project_id}", headers=eve.headers)
    assert r.status_code == 200


async def test_unknown_parameters_from_2_75(api: Api, alice: Caller) -> None:
    r = await api.client.get(f"{URL}?colour=red", headers={**alice.headers, **mv("2.74")})
    assert r.status_code == 200
    r = await api.client.get(f"{URL}?colour=red", headers={**alice.headers, **mv("2.75")})
    assert "colour" in assert_fault(r, 400, "badRequest")


async def test_needs_a_token(api: Api) -> None:
    r = await api.client.get(URL, headers={"X-Auth-Token": ""})
    assert_fault(r, 401, "unauthorized")


async def test_nul_characters_are_refused_not_crashed(api: Api) -> None:
    r = await api.client.get(f"{URL}?tenant_id=a%00b")
    assert r.status_code == 200  # an unknown project has the defaults and no usage, as in Nova
    assert r.json()["limits"]["absolute"]["totalInstancesUsed"] == 0
