"""os-instance-actions: the create request, every placement attempt with its explanation,
and each power action, at the microversions that change what is shown."""

from __future__ import annotations

import hashlib

import pytest

from tests.api.compute.helpers import V21, create, fault, until_gone, until_status, who
from tests.api.conftest import Api


async def test_actions_tell_where_the_server_went(api: Api) -> None:
    w = await who(api)
    sid = await create(api, w, "a")
    await until_status(api, w, sid, "ACTIVE")
    r = await api.client.post(
        f"{V21}/servers/{sid}/action",
        headers={
            **w.h("2.79"),
            "X-OpenStack-Request-ID": "req-11111111-2222-3333-4444-555555555555",
        },
        json={"os-stop": None},
    )
    assert r.status_code == 202
    await until_status(api, w, sid, "SHUTOFF")
    api.plane.clock.advance(5)
    assert (
        await api.client.post(f"{V21}/servers/{sid}/action", headers=w.h(), json={"os-start": None})
    ).status_code == 202
    await until_status(api, w, sid, "ACTIVE")

    r = await api.client.get(f"{V21}/servers/{sid}/os-instance-actions", headers=w.h("2.79"))
    assert r.status_code == 200
    actions = r.json()["instanceActions"]
    assert [a["action"] for a in actions] == ["start", "stop", "create"]  # newest first
    create_ = actions[-1]
    assert set(create_) == {
        "action", "instance_uuid", "request_id", "user_id", "project_id", "start_time",
        "message", "updated_at",
    }  # fmt: skip
    assert create_["instance_uuid"] == sid and create_["project_id"] == w.project_id
    assert "placed on private" in create_["message"]  # the scheduler's explanation
    assert "burst threshold" in create_["message"]
    assert actions[1]["request_id"] == "req-11111111-2222-3333-4444-555555555555"

    # The create action's events: each placement attempt and the spawn.
    r = await api.client.get(
        f"{V21}/servers/{sid}/os-instance-actions/{create_['request_id']}", headers=w.h("2.79")
    )
    action = r.json()["instanceAction"]
    events = action["events"]
    assert [e["event"] for e in events] == ["spawn (attempt 1)", "schedule (attempt 1)"]
    assert all(e["result"] == "Success" for e in events)
    assert set(events[0]) == {"event", "start_time", "finish_time", "result", "hostId"}
    assert events[0]["hostId"] == hashlib.sha224((w.project_id + "private").encode()).hexdigest()
    # An admin also sees each event's own explanation (traceback) and host.
    admin = await who(api, role="admin", project="admin")
    r = await api.client.get(
        f"{V21}/servers/{sid}/os-instance-actions/{create_['request_id']}",
        headers=admin.h("2.79"),
    )
    schedule = r.json()["instanceAction"]["events"][1]
    assert schedule["host"] == "private"
    assert schedule["traceback"].startswith("placed on private: ")

    stop = actions[1]["request_id"]
    r = await api.client.get(f"{V21}/servers/{sid}/os-instance-actions/{stop}", headers=w.h("2.79"))
    assert [e["event"] for e in r.json()["instanceAction"]["events"]] == ["compute_stop"]
    r = await api.client.get(f"{V21}/servers/{sid}/os-instance-actions/req-nope", headers=w.h())
    assert fault(r, 404) == "Action req-nope not found"


@pytest.mark.parametrize(
    ("version", "has_events", "has_updated"),
    [("2.1", False, False), ("2.51", True, False), ("2.58", True, True)],
)
async def test_fields_by_version(
    api: Api, version: str, has_events: bool, has_updated: bool
) -> None:
    w = await who(api)
    sid = await create(api, w, "v")
    await until_status(api, w, sid, "ACTIVE")
    r = await api.client.get(f"{V21}/servers/{sid}/os-instance-actions", headers=w.h(version))
    [action] = r.json()["instanceActions"]
    assert ("updated_at" in action) == has_updated
    r = await api.client.get(
        f"{V21}/servers/{sid}/os-instance-actions/{action['request_id']}", headers=w.h(version)
    )
    shown = r.json()["instanceAction"]
    assert ("events" in shown) == has_events
    if has_events:
        assert "hostId" not in shown["events"][0] and "traceback" not in shown["events"][0]


async def test_paging_and_deleted_servers(api: Api) -> None:
    w = await who(api)
    sid = await create(api, w, "p")
    await until_status(api, w, sid, "ACTIVE")
    for _ in range(3):
        api.plane.clock.advance(1)
        r = await api.client.post(
            f"{V21}/servers/{sid}/action", headers=w.h(), json={"reboot": {"type": "SOFT"}}
        )
        assert r.status_code == 202
        await until_status(api, w, sid, "ACTIVE")
    base = f"{V21}/servers/{sid}/os-instance-actions"
    r = await api.client.get(f"{base}?limit=2", headers=w.h("2.58"))
    page = r.json()
    assert [a["action"] for a in page["instanceActions"]] == ["reboot", "reboot"]
    href = page["links"][0]["href"]
    assert page["links"][0]["rel"] == "next" and "limit=2" in href
    r = await api.client.get(href.removeprefix("http://canopy.test"), headers=w.h("2.58"))
    assert [a["action"] for a in r.json()["instanceActions"]] == ["reboot", "create"]
    fault(await api.client.get(f"{base}?marker=req-nope", headers=w.h("2.58")), 400)
    fault(await api.client.get(f"{base}?colour=red", headers=w.h("2.58")), 400)
    assert (await api.client.get(f"{base}?limit=1", headers=w.h("2.57"))).status_code == 200
    since = page["instanceActions"][0]["start_time"]
    r = await api.client.get(f"{base}?changes-since={since}", headers=w.h("2.58"))
    assert [a["action"] for a in r.json()["instanceActions"]] == ["reboot"]
    r = await api.client.get(f"{base}?changes-before={since}", headers=w.h("2.66"))
    assert len(r.json()["instanceActions"]) == 4

    # A deleted server's actions stay readable from 2.21.
    assert (await api.client.delete(f"{V21}/servers/{sid}", headers=w.h())).status_code == 204
    await until_gone(api, w, sid)
    r = await api.client.get(base, headers=w.h("2.21"))
    assert r.json()["instanceActions"][0]["action"] == "delete"
    fault(await api.client.get(base, headers=w.h("2.20")), 404)
    other = await who(api, project="other", user="olga")
    fault(await api.client.get(base, headers=other.h("2.79")), 404)
