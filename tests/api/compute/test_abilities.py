"""A server action the cloud cannot do is refused before it is accepted: 409 in Nova's
fault format, naming the reason the cloud's driver gave; nothing is changed."""

from __future__ import annotations

from typing import Any

from canopy.domain.states import Ability
from canopy.providers.base import Abilities
from tests.api.compute.helpers import V21, create, fault, show, until_status, who
from tests.api.conftest import Api

WHY = "spot servers on this cloud cannot be stopped, only deleted"


async def _act(api: Api, headers: dict[str, str], sid: str, body: dict[str, Any]) -> Any:
    return await api.client.post(f"{V21}/servers/{sid}/action", headers=headers, json=body)


async def test_stop_on_a_cloud_that_cannot_stop_is_refused_with_the_reason(api: Api) -> None:
    w = await who(api)
    sid = await create(api, w, "spot")
    s = await until_status(api, w, sid, "ACTIVE")
    cloud = s["OS-EXT-AZ:availability_zone"]
    # The cloud's driver declares the ability missing; a worker records it on the cloud.
    api.plane.rt.drivers[cloud].abilities = Abilities(missing={Ability.STOP_START: WHY})
    await api.plane.worker.sync.sync_cloud(cloud, force=True)

    r = await _act(api, w.h("2.79"), sid, {"os-stop": None})
    message = fault(r, 409)
    assert message == (
        f"Cannot 'stop' instance {sid}: its availability zone {cloud} cannot stop and "
        f"start servers: {WHY}"
    )
    # Nothing changed: no task, no action recorded, the server stays ACTIVE.
    s = await show(api, w, sid)
    assert (s["status"], s["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    r = await api.client.get(f"{V21}/servers/{sid}/os-instance-actions", headers=w.h())
    assert [a["action"] for a in r.json()["instanceActions"]] == ["create"]
    # What the cloud can do is still accepted.
    assert (await _act(api, w.h("2.79"), sid, {"reboot": {"type": "SOFT"}})).status_code == 202
    # The admin view says which abilities the cloud lacks, and why.
    r = await api.client.get(f"/canopy/v1/clouds/{cloud}")
    abilities = r.json()["abilities"]
    assert abilities["stop_start"] == {"available": False, "reason": WHY}
    assert abilities["reboot"] == {"available": True, "reason": None}
