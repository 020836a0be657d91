"""Hostile signals: what a token holder may send and what must never follow from it (a 500
on a later read, a signal landing on a resource it was not sent to, ...)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
import pytest

from canopy.api.orchestration import signals as signal_route
from canopy.orchestration import controller
from tests.api.conftest import Api
from tests.orchestration.helpers import resources, settle, signals, stack

from .test_signals import path_of
from .test_software_deployment_api import _create, _deploying, base, template
from .test_stacks import assert_heat_fault


def _anonymous(api: Api) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://canopy.test"
    )


async def test_nan_and_infinity_in_a_signal_are_a_400_on_every_database(api: Api) -> None:
    """JSON has no NaN or Infinity, but Python's parser takes them: SQLite stored them and
    the stack's outputs (a deployment's stdout) then could not be written as JSON (a 500
    on every later `stack show`); PostgreSQL refused them at commit."""
    sid = await _create(api, "nan", template())
    deployed = await _deploying(api, "nan", sid)
    url = next(i["value"] for i in deployed["inputs"] if i["name"] == "deploy_signal_id")
    async with _anonymous(api) as agent:
        for body in (
            b'{"deploy_stdout": NaN, "deploy_status_code": 0}',
            b'{"deploy_stdout": [Infinity], "deploy_status_code": 0}',
            b'{"deploy_status_code": -Infinity}',
        ):
            assert_heat_fault(await agent.post(path_of(url), content=body), 400)
        r = await agent.post(path_of(url), json={"deploy_stdout": "ok", "deploy_status_code": 0})
        assert r.status_code == 200, r.text
    done = await settle(api.plane, sid)
    assert done.status == "COMPLETE", done.status_reason
    r = await api.client.get(base(api, "nan", sid))
    assert r.status_code == 200, r.text
    outputs = {o["output_key"]: o["output_value"] for o in r.json()["stack"]["outputs"]}
    assert outputs["stdout"] == "ok"


HANDLE = {
    "heat_template_version": "2018-08-31",
    "resources": {
        "handle": {"type": "OS::Heat::WaitConditionHandle"},
        "wait": {
            "type": "OS::Heat::WaitCondition",
            "properties": {"handle": {"get_resource": "handle"}, "timeout": 600},
        },
    },
    "outputs": {
        "token": {"value": {"get_attr": ["handle", "token"]}},
        "endpoint": {"value": {"get_attr": ["handle", "endpoint"]}},
    },
}


async def _waiting_on_its_handle(api: Api) -> tuple[str, str, dict[str, Any]]:
    """A stack of HANDLE whose wait has started: its id, its URL and its outputs."""
    pid = api.admin.project_id
    r = await api.client.post(
        f"/orchestration/v1/{pid}/stacks", json={"stack_name": "swap", "template": HANDLE}
    )
    sid = r.json()["stack"]["id"]
    url = f"/orchestration/v1/{pid}/stacks/swap/{sid}"

    async def waiting() -> bool:
        wait = (await resources(api.plane, sid)).get("wait")
        return wait is not None and wait.status == "IN_PROGRESS"

    await api.plane.run_until(waiting)
    r = await api.client.get(url)
    return sid, url, {o["output_key"]: o["output_value"] for o in r.json()["stack"]["outputs"]}


async def test_a_signal_to_a_handle_replaced_meanwhile_is_not_the_new_ones(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old handle's token is checked when the signal is written; the handle is replaced
    in the step that runs while it is written (PostgreSQL: two writers at once). The signal
    must not complete the new handle's wait: it was for the old one."""
    if api.plane.db.url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: the route and a step do not overlap")
    sid, url, outs = await _waiting_on_its_handle(api)
    headers = {"X-Auth-Token": outs["token"]}
    async with _anonymous(api) as agent:
        r = await agent.post(path_of(outs["endpoint"]), json={"id": "1"}, headers=headers)
        assert r.status_code == 200, r.text
    assert (await settle(api.plane, sid)).status == "COMPLETE"
    # An update that replaces the handle (its transport is not updatable) and so the wait.
    replaced = copy.deepcopy(HANDLE)
    replaced["resources"]["handle"]["properties"] = {"signal_transport": "HEAT_SIGNAL"}
    real = controller.step_stack
    checked = asyncio.Event()
    real_matches = signal_route.matches

    def matches(row: Any, token: str | None) -> bool:
        found = real_matches(row, token)
        checked.set()  # the route has read the old handle and checked its token
        return found

    monkeypatch.setattr(signal_route, "matches", matches)
    stepped = asyncio.Event()
    real_body = signal_route._body

    async def body(*args: Any) -> Any:
        # The signal is recorded after the step that replaces the handle has committed
        # (on PostgreSQL nothing else orders the route's commit after the step's read of
        # the pending signals).
        await stepped.wait()
        return await real_body(*args)

    monkeypatch.setattr(signal_route, "_body", body)
    sent: list[asyncio.Task[httpx.Response]] = []

    async def post() -> httpx.Response:
        async with _anonymous(api) as agent:
            return await agent.post(path_of(outs["endpoint"]), json={"id": "2"}, headers=headers)

    async def racing(*args: Any, **kw: Any) -> Any:
        if sent:
            return await real(*args, **kw)
        sent.append(asyncio.create_task(post()))  # the old handle's agent signals
        await checked.wait()  # its token checked against the old handle
        try:
            return await real(*args, **kw)
        finally:
            stepped.set()

    monkeypatch.setattr(controller, "step_stack", racing)
    r = await api.client.patch(url, json={"template": replaced})
    assert r.status_code == 202, r.text
    for _ in range(10):
        await api.plane.step()
    assert (await sent[0]).status_code == 200
    rows = await resources(api.plane, sid)
    assert rows["wait"].status == "IN_PROGRESS", rows["wait"].status_reason
    assert (await stack(api.plane, sid)).status == "IN_PROGRESS"
    done = await signals(api.plane, sid)
    assert done[-1].outcome == "ignored: the resource was replaced"


async def test_a_signal_the_old_handle_took_before_it_was_replaced_is_not_the_new_ones(
    api: Api,
) -> None:
    """The other order: the old handle takes a signal, then an update replaces the handle
    and so the wait. The new wait waits on the new handle, which has had no signal."""
    sid, url, outs = await _waiting_on_its_handle(api)
    headers = {"X-Auth-Token": outs["token"]}
    async with _anonymous(api) as agent:
        for n in ("1", "2"):
            r = await agent.post(path_of(outs["endpoint"]), json={"id": n}, headers=headers)
            assert r.status_code == 200, r.text
            assert (await settle(api.plane, sid)).status == "COMPLETE"
    old = await resources(api.plane, sid)
    replaced = copy.deepcopy(HANDLE)
    replaced["resources"]["handle"]["properties"] = {"signal_transport": "HEAT_SIGNAL"}
    r = await api.client.patch(url, json={"template": replaced})
    assert r.status_code == 202, r.text
    for _ in range(10):
        await api.plane.step()
    rows = await resources(api.plane, sid)
    assert rows["handle"].id != old["handle"].id
    assert rows["handle"].data["signals"] == {}
    assert rows["wait"].id != old["wait"].id
    assert rows["wait"].properties["handle"] == rows["handle"].physical_resource_id
    assert rows["wait"].status == "IN_PROGRESS", rows["wait"].status_reason
    assert (await stack(api.plane, sid)).status == "IN_PROGRESS"
    assert [s.outcome.split(" reason:")[0] for s in await signals(api.plane, sid)] == [
        "status:SUCCESS",
        "status:SUCCESS",
    ]
