"""A stack's writes wake the stack loop alone, not every loop of the worker: a create woke
placement, provisioning, power, sync, leases, inventory, housekeeping and notifications,
whose passes ran before (and beside) the stack's first step (issue 11's wide stack)."""

from __future__ import annotations

from tests.api.conftest import Api

from .test_stacks import TEMPLATE, _create


async def test_create_update_delete_and_actions_wake_the_stack_loop_alone(api: Api) -> None:
    pid = api.admin.project_id
    api.wake.take()
    sid = await _create(api, "woken")
    assert api.wake.take() == ("orchestration",)
    await api.plane.worker.orchestration.run_once()
    url = f"/orchestration/v1/{pid}/stacks/woken/{sid}"
    body = {"parameters": {"word": "bye"}, "template": TEMPLATE, "files": {}, "environment": {}}
    assert (await api.client.put(url, json=body)).status_code == 202
    assert api.wake.take() == ("orchestration",)
    await api.plane.worker.orchestration.run_once()
    r = await api.client.post(url + "/actions", json={"check": None})
    assert r.status_code == 200, r.text
    assert api.wake.take() == ("orchestration",)
    await api.plane.worker.orchestration.run_once()
    assert (await api.client.delete(url)).status_code == 204
    assert api.wake.take() == ("orchestration",)
