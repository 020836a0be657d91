"""`POST .../actions` and `DELETE .../abandon` as python-heatclient sends them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from canopy.store.models import Server
from tests.api.conftest import Api

from .test_stacks import assert_heat_fault

SERVERS: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "resources": {
        "vm": {"type": "OS::Nova::Server", "properties": {"flavor": "m1.small", "image": "cirros"}},
        "tag": {"type": "OS::Heat::Value", "properties": {"value": {"get_resource": "vm"}}},
    },
}


async def _settled(api: Api, url: str) -> dict[str, Any]:
    async def done() -> bool:
        show = (await api.client.get(url)).json()["stack"]
        return not str(show["stack_status"]).endswith("IN_PROGRESS")

    await api.plane.run_until(done, steps=60)
    return dict((await api.client.get(url)).json()["stack"])


async def _stack(api: Api, name: str) -> str:
    pid = api.admin.project_id
    r = await api.client.post(
        f"/orchestration/v1/{pid}/stacks", json={"stack_name": name, "template": SERVERS}
    )
    assert r.status_code == 201, r.text
    url = f"/orchestration/v1/{pid}/stacks/{name}/{r.json()['stack']['id']}"
    assert (await _settled(api, url))["stack_status"] == "CREATE_COMPLETE"
    return url


async def test_suspend_by_name_redirects_and_resume_and_check_complete(api: Api) -> None:
    pid = api.admin.project_id
    url = await _stack(api, "acts")
    # What `openstack stack suspend acts` sends: the name, then the 302 with the body again.
    r = await api.client.post(
        f"/orchestration/v1/{pid}/stacks/acts/actions", json={"suspend": None}
    )
    assert r.status_code == 302 and r.headers["location"].endswith(url + "/actions")
    r = await api.client.post(url + "/actions", json={"suspend": None})
    assert r.status_code == 200, r.text
    shown = (await api.client.get(url)).json()["stack"]
    assert shown["stack_status"] == "SUSPEND_IN_PROGRESS"  # flipped before the answer
    assert (await _settled(api, url))["stack_status"] == "SUSPEND_COMPLETE"
    r = await api.client.post(url + "/actions", json={"resume": None})
    assert r.status_code == 200, r.text
    assert (await _settled(api, url))["stack_status"] == "RESUME_COMPLETE"
    r = await api.client.post(url + "/actions", json={"check": None})
    assert r.status_code == 200, r.text
    assert (await _settled(api, url))["stack_status"] == "CHECK_COMPLETE"


async def test_bad_or_untimely_actions_are_heat_faults(api: Api) -> None:
    url = await _stack(api, "bad-acts")
    assert "Multiple actions specified: exactly one action" in assert_heat_fault(
        await api.client.post(url + "/actions", json={"suspend": None, "resume": None}), 400
    )
    assert "No action specified" in assert_heat_fault(
        await api.client.post(url + "/actions", json={}), 400
    )
    assert "Invalid action explode specified" in assert_heat_fault(
        await api.client.post(url + "/actions", json={"explode": None}), 400
    )
    # Heat has no rollback of a finished stack: its error, with what to do instead.
    why = assert_heat_fault(await api.client.post(url + "/actions", json={"rollback": None}), 400)
    assert why.startswith("Invalid action rollback specified") and "--rollback enabled" in why
    assert_heat_fault(await api.client.post(url + "/actions", json=["suspend"]), 400)
    assert "suspend it first" in assert_heat_fault(
        await api.client.post(url + "/actions", json={"resume": None}), 409
    )
    assert "Cancelling update" in assert_heat_fault(
        await api.client.post(url + "/actions", json={"cancel_update": None}), 409
    )
    show = (await api.client.get(url)).json()["stack"]
    assert show["stack_status"] == "CREATE_COMPLETE"  # nothing changed


async def test_abandon_returns_the_data_and_keeps_the_servers(api: Api) -> None:
    pid = api.admin.project_id
    url = await _stack(api, "left")
    r = await api.client.delete(url + "/abandon")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["name"] == "left" and data["template"] == SERVERS
    assert sorted(data["resources"]) == ["tag", "vm"]
    vm_id = data["resources"]["vm"]["resource_id"]
    assert data["resources"]["vm"]["type"] == "OS::Nova::Server"
    # The stack is gone; its server is an ordinary server of the project.
    assert_heat_fault(await api.client.get(f"/orchestration/v1/{pid}/stacks/left"), 404)
    async with api.plane.db.read() as s:
        server = await s.get(Server, vm_id)
        assert server is not None and not server.deleted and server.status == "ACTIVE"
        assert server.project_id == pid
    await api.plane.step()
    async with api.plane.db.read() as s:
        live = list((await s.execute(select(Server).where(Server.deleted.is_(False)))).scalars())
    assert [x.id for x in live] == [vm_id]
    # A stack of that name can be made again.
    await _stack(api, "left")
