"""Host reservations (physical:host) over HTTP: lease create, os-hosts allocations, and
booting into the reserved hosts with `--hint reservation=<id>`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from canopy.api.app import create_app
from canopy.store.models import Claim, Cloud, HostAllocation, Lease, Reservation
from tests.api.conftest import Api
from tests.api.reservation.test_leases import blazar_error
from tests.api.tokens import caller
from tests.controllers.harness import make_plane

V1 = "/reservation/v1"
HOSTS = f"{V1}/os-hosts"
SERVERS = "/compute/v2.1/servers"

# private: three 4-vcpu hosts (h1..h3) and a fourth; public: large, priced.
CLOUDS = """
[scheduler]
burst_threshold = 1.0

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 4
host_ram_mb = 8192
host_disk_gb = 100
boot_seconds = 1
api_latency_ms = 0

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 10
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 1
api_latency_ms = 0
price_per_vcpu_hour = 0.05
"""


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    plane = await make_plane(db_url, tmp_path, toml=CLOUDS)
    wake = asyncio.Event()
    app = create_app(settings=plane.settings, db=plane.db, clock=plane.clock, wake=wake)
    try:
        admin = await caller(plane.db, plane.clock, project="admin", user="admin", role="admin")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://canopy.test",
            headers=admin.headers,
        ) as c:
            yield Api(plane=plane, app=app, client=c, wake=wake, admin=admin)
    finally:
        await plane.close()


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def lease_body(
    name: str, start: datetime | str, end: datetime, **reservation: Any
) -> dict[str, Any]:
    """A create body as `openstack reservation lease create --reservation
    min=..,max=..,resource_type=physical:host,...` sends it."""
    r = {
        "min": 1,
        "max": 1,
        "resource_type": "physical:host",
        "hypervisor_properties": "",
        "resource_properties": "",
    }
    r.update(reservation)
    return {
        "name": name,
        "start_date": start if isinstance(start, str) else _when(start),
        "end_date": _when(end),
        "reservations": [r],
        "events": [],
        "before_end_date": None,
    }


async def register(api: Api, *names: str, **extra: Any) -> list[str]:
    ids = []
    for n in names:
        r = await api.client.post(HOSTS, json={"name": n, **extra})
        assert r.status_code == 201, r.text
        ids.append(r.json()["host"]["id"])
    return ids


async def _rows(api: Api) -> tuple[int, int, int]:
    async with api.plane.db.read() as s:
        out = []
        for model in (Lease, Reservation, HostAllocation):
            out.append(int(await s.scalar(select(func.count()).select_from(model)) or 0))
        return out[0], out[1], out[2]


def boot_body(name: str, rid: str, flavor: str = "m1.small", n: int = 1) -> dict[str, Any]:
    return {
        "server": {
            "name": name,
            "imageRef": "cirros",
            "flavorRef": flavor,
            "networks": "none",
            "min_count": n,
            "max_count": n,
        },
        "os:scheduler_hints": {"reservation": rid},
    }


async def boot(api: Api, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    h = {"OpenStack-API-Version": "compute 2.79", **(headers or {})}
    return await api.client.post(SERVERS, json=body, headers=h)


async def test_a_host_lease_holds_between_min_and_max_matching_free_hosts(api: Api) -> None:
    h1, h2, h3 = await register(api, "private:h1", "private:h2", "private:h3", gpu="True")
    await api.client.put(f"{HOSTS}/{h3}", json={"values": {"gpu": "False"}})
    t0 = api.plane.clock.now()
    start, end = t0 + timedelta(hours=1), t0 + timedelta(hours=3)
    body = lease_body(
        "gpus",
        start,
        end,
        min=1,
        max=5,
        hypervisor_properties='[">=", "$vcpus", "4"]',
        resource_properties='["=", "$gpu", "True"]',
    )
    r = await api.client.post(f"{V1}/leases", json=body)
    assert r.status_code == 201, r.text
    lease = r.json()["lease"]
    [res] = lease["reservations"]
    assert res["resource_type"] == "physical:host" and res["status"] == "pending"
    assert (res["min"], res["max"]) == (1, 5)
    assert res["hypervisor_properties"] == '[">=", "$vcpus", "4"]'
    assert res["resource_properties"] == '["=", "$gpu", "True"]'
    assert res["before_end"] == "default"
    assert res["hosts"] == [h1, h2]  # as many as match and are free, up to max
    assert res["placement"] == [{"cloud": "private", "amount": 2, "reason": "hosts h1, h2"}]

    # os-hosts allocations say which reservation holds each host, in Blazar's shape.
    r = await api.client.get(f"{HOSTS}/allocations")
    held = {
        "id": res["id"],
        "lease_id": lease["id"],
        "start_date": lease["start_date"],
        "end_date": lease["end_date"],
    }
    assert r.json() == {
        "allocations": [
            {"resource_id": h1, "reservations": [held]},
            {"resource_id": h2, "reservations": [held]},
            {"resource_id": h3, "reservations": []},
        ]
    }
    r = await api.client.get(f"{HOSTS}/{h2}/allocation")
    assert r.json() == {"allocation": {"resource_id": h2, "reservations": [held]}}
    r = await api.client.get(f"{HOSTS}/allocations", params={"lease_id": "nope"})
    assert all(a["reservations"] == [] for a in r.json()["allocations"])

    # A host a lease holds cannot be unregistered.
    message = blazar_error(await api.client.delete(f"{HOSTS}/{h1}"), 409)
    assert "The host is reserved" in message


async def test_too_few_hosts_is_409_and_writes_nothing(api: Api) -> None:
    await register(api, "private:h1", "private:h2")
    t0 = api.plane.clock.now()
    start, end = t0 + timedelta(hours=1), t0 + timedelta(hours=2)
    first = lease_body("a", start, end, min=2, max=2)
    assert (await api.client.post(f"{V1}/leases", json=first)).status_code == 201
    before = await _rows(api)
    # Overlapping by a minute: both hosts are held.
    late = lease_body("b", end - timedelta(minutes=1), end + timedelta(hours=1))
    message = blazar_error(await api.client.post(f"{V1}/leases", json=late), 409)
    assert "Not enough hosts available" in message and "0 of them free" in message
    many = lease_body("c", end, end + timedelta(hours=1), min=3, max=3)
    message = blazar_error(await api.client.post(f"{V1}/leases", json=many), 409)
    assert "needs at least 3" in message
    nomatch = lease_body("d", end, end + timedelta(hours=1), resource_properties='["=", "$x", "1"]')
    message = blazar_error(await api.client.post(f"{V1}/leases", json=nomatch), 409)
    assert "0 match" in message
    assert await _rows(api) == before
    # Half-open windows: a lease may start the instant the other ends.
    after = lease_body("e", end, end + timedelta(hours=1), min=2, max=2)
    assert (await api.client.post(f"{V1}/leases", json=after)).status_code == 201


BAD: list[tuple[dict[str, Any], str]] = [
    ({"hypervisor_properties": "[>= vcpus"}, "not valid JSON"),
    ({"hypervisor_properties": '["~", "$vcpus", "2"]'}, "unknown operator"),
    ({"hypervisor_properties": '["=", "vcpus", "2"]'}, "is not a $field name"),
    ({"hypervisor_properties": '["=", "$vcpus", 2]'}, "is not [op, $field, value]"),
    ({"hypervisor_properties": '["or", ["=", "$a", "1"]]'}, "is not [op, $field, value]"),
    ({"resource_properties": '["and"]'}, "'and' needs at least one term"),
    ({"resource_properties": "[" * 100_000 + "]" * 100_000}, "longer than 4096"),
    ({"resource_properties": "[" * 2000 + "]" * 2000}, "not valid JSON"),
    ({"resource_properties": 7}, "not a string"),
    ({"min": 0}, "min must be between 1"),
    ({"min": 3, "max": 2}, "Max must be equal to or larger than min"),
    ({"max": 10**9}, "max must be between 1 and 1000"),
    ({"max": "9" * 5000}, "max must be a whole number"),
    ({"min": "²"}, "min must be a whole number"),
    ({"before_end": "reboot"}, "Malformed parameter before_end"),
    ({"before_end": "snapshot"}, "not supported"),
]


async def test_bad_host_reservations_are_400_and_change_nothing(api: Api) -> None:
    await register(api, "private:h1")
    t0 = api.plane.clock.now()
    before = await _rows(api)
    for change, said in BAD:
        body = lease_body("bad", t0 + timedelta(hours=1), t0 + timedelta(hours=2), **change)
        message = blazar_error(await api.client.post(f"{V1}/leases", json=body), 400)
        assert said in message, (change, message)
    for key in ("min", "max", "hypervisor_properties", "resource_properties"):
        body = lease_body("bad", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
        del body["reservations"][0][key]
        message = blazar_error(await api.client.post(f"{V1}/leases", json=body), 400)
        assert f"Missing parameter {key}" in message
    assert await _rows(api) == before


async def test_a_registered_host_leaves_the_ordinary_pool(api: Api) -> None:
    [h1] = await register(api, "private:h1")
    # Its whole size is held by an open-ended claim of its own.
    async with api.plane.db.read() as s:
        [claim] = (await s.execute(select(Claim).where(Claim.reservation_id == "host:" + h1))).all()
        assert (claim[0].vcpus, claim[0].ends_at) == (4, None)
    # Ordinary servers fill the other three hosts and never land on h1.
    ids = await api.place(12, flavor="m1.small")
    await api.plane.run_until(lambda: _all_active(api, ids))
    sim = api.plane.sim("private")
    on_private = [sv for sv in await api.plane.servers() if sv.cloud == "private"]
    assert len(on_private) == 12  # 3 hosts x 4 vcpus: private is exactly full
    assert {await sim.host_of(sv.remote_id or "") for sv in on_private} == {"h2", "h3", "h4"}
    # Unregistering gives it back.
    assert (await api.client.delete(f"{HOSTS}/{h1}")).status_code == 204
    async with api.plane.db.read() as s:
        assert await s.scalar(select(func.count()).where(Claim.reservation_id == "host:" + h1)) == 0


async def test_a_busy_cloud_cannot_give_up_a_host(api: Api) -> None:
    await api.place(14, flavor="m1.small")  # 14 of private's 16 vcpus
    message = blazar_error(await api.client.post(HOSTS, json={"name": "private:h1"}), 409)
    assert "cannot leave the ordinary pool" in message and "2 vcpus free" in message


async def _all_active(api: Api, ids: list[str]) -> bool:
    servers = {sv.id: sv for sv in await api.plane.servers()}
    return all(servers[i].status == "ACTIVE" for i in ids)


async def _active_lease(api: Api, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    t0 = api.plane.clock.now()
    body = lease_body("hosts", t0 + timedelta(minutes=1), t0 + timedelta(hours=2), **kw)
    r = await api.client.post(f"{V1}/leases", json=body, headers=headers or {})
    assert r.status_code == 201, r.text
    lease = r.json()["lease"]
    api.plane.clock.advance(60)
    await api.plane.worker.leases.run_once()
    return lease


async def test_booting_with_the_hint_lands_on_the_reserved_hosts(api: Api) -> None:
    member = await caller(api.plane.db, api.plane.clock, project="demo", user="mia", role="member")
    h1, h2 = await register(api, "private:h1", "private:h2")
    lease = await _active_lease(api, member.headers, min=1, max=1)
    rid = lease["reservations"][0]["id"]
    assert lease["reservations"][0]["hosts"] == [h1]
    # m1.large is 4 vcpus: h1 holds one of them.
    r = await boot(api, boot_body("big", rid, flavor="m1.large"), member.headers)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    await api.plane.run_until(lambda: _all_active(api, [sid]))
    [server] = [sv for sv in await api.plane.servers() if sv.id == sid]
    assert server.cloud == "private" and server.reservation_id == rid
    assert await api.plane.sim("private").host_of(server.remote_id or "") == "h1"
    # Beyond the reserved hosts' room: refused (Nova's 403), nothing written.
    r = await boot(api, boot_body("more", rid, flavor="m1.tiny"), member.headers)
    assert r.status_code == 403, r.text
    assert "room for 0 more servers" in r.json()["forbidden"]["message"]
    assert len(await api.plane.servers()) == 1

    # At the end: the before-end event, then the server goes with the lease.
    api.plane.clock.advance(2 * 3600)
    await api.plane.worker.leases.run_once()
    member = await caller(api.plane.db, api.plane.clock, project="demo", user="mia", role="member")
    r = await api.client.get(f"{V1}/leases/{lease['id']}", headers=member.headers)
    assert r.status_code == 200, r.text
    done = r.json()["lease"]
    assert done["status"] == "TERMINATED"
    events = {e["event_type"]: e for e in done["events"]}
    assert (
        events["before_end_lease"]["status"] == "DONE" and events["end_lease"]["status"] == "DONE"
    )
    [server] = await api.plane.servers()
    assert server.desired_state == "deleted"
    admin = await caller(api.plane.db, api.plane.clock, project="admin", user="admin", role="admin")
    r = await api.client.get(f"{HOSTS}/{h1}/allocation", headers=admin.headers)
    assert r.json()["allocation"]["reservations"] == []
    assert (await api.client.delete(f"{HOSTS}/{h2}", headers=admin.headers)).status_code == 204


async def test_the_hint_is_refused_when_it_may_not_be_used(api: Api) -> None:
    await register(api, "private:h1", "private:h2")
    other = await caller(api.plane.db, api.plane.clock, project="other", user="o", role="member")
    t0 = api.plane.clock.now()
    body = lease_body("later", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    pending = (await api.client.post(f"{V1}/leases", json=body)).json()["lease"]
    lease = await _active_lease(api)
    rid = lease["reservations"][0]["id"]
    cases = [
        (boot_body("x", rid), other.headers, 400, "could not be found"),  # another project's
        (boot_body("x", pending["reservations"][0]["id"]), None, 400, "only while the lease"),
        (boot_body("x", "6f1c6c58-0000-4000-8000-000000000000"), None, 400, "could not be found"),
        (boot_body("x", ""), None, 400, "must be a reservation id"),
        (boot_body("x", "r" * 65), None, 400, "must be a reservation id"),
    ]
    for b, headers, code, said in cases:
        r = await boot(api, b, headers)
        assert r.status_code == code, r.text
        assert said in r.text, r.text
    instance = {
        "name": "vms",
        "start_date": "now",
        "end_date": _when(t0 + timedelta(hours=3)),
        "reservations": [
            {
                "resource_type": "virtual:instance",
                "amount": 1,
                "vcpus": 1,
                "memory_mb": 512,
                "disk_gb": 0,
                "affinity": "False",
                "resource_properties": "",
            }
        ],
        "events": [],
    }
    r = await api.client.post(f"{V1}/leases", json=instance)
    assert r.status_code == 201, r.text
    irid = r.json()["lease"]["reservations"][0]["id"]
    await api.plane.worker.leases.run_once()
    r = await boot(api, boot_body("x", irid))
    assert r.status_code == 400 and "--flavor" in r.text, r.text
    assert await api.plane.servers() == []


async def test_moving_a_host_lease_onto_another_holder_with_no_other_host_is_409(
    api: Api,
) -> None:
    await register(api, "private:h1")
    t0 = api.plane.clock.now()
    a = lease_body("a", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    b = lease_body("b", t0 + timedelta(hours=3), t0 + timedelta(hours=4))
    la = (await api.client.post(f"{V1}/leases", json=a)).json()["lease"]
    assert (await api.client.post(f"{V1}/leases", json=b)).status_code == 201
    r = await api.client.put(f"{V1}/leases/{la['id']}", json={"prolong_for": "2h"})
    assert "held by another reservation" in blazar_error(r, 409)
    r = await api.client.put(f"{V1}/leases/{la['id']}", json={"prolong_for": "1h"})
    assert r.status_code == 200, r.text
    r = await api.client.get(f"{HOSTS}/allocations")
    [alloc] = r.json()["allocations"]
    shown = [(x["lease_id"], x["end_date"]) for x in alloc["reservations"]]
    prolonged = (t0 + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.000000")
    assert shown[0] == (la["id"], prolonged) and len(shown) == 2


async def test_a_host_reservation_has_no_amount_to_change(api: Api) -> None:
    await register(api, "private:h1")
    t0 = api.plane.clock.now()
    body = lease_body("a", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    lease = (await api.client.post(f"{V1}/leases", json=body)).json()["lease"]
    [res] = lease["reservations"]
    for change in ({"amount": 3}, {"vcpus": 2}):
        r = await api.client.put(
            f"{V1}/leases/{lease['id']}",
            json={"reservations": [{"id": res["id"], **change}]},
        )
        assert "physical:host reservation: it holds hosts" in blazar_error(r, 400)
    after = (await api.client.get(f"{V1}/leases/{lease['id']}")).json()["lease"]
    assert after["reservations"][0]["hosts"] == res["hosts"]
    assert after["updated_at"] == lease["updated_at"]


async def test_servers_that_never_got_a_host_hold_no_room(api: Api) -> None:
    await register(api, "private:h1")  # 4 vcpus
    lease = await _active_lease(api, min=1, max=1)
    rid = lease["reservations"][0]["id"]
    async with api.plane.db.session() as s:  # no cloud takes anything: the boots fail
        await s.execute(update(Cloud).where(Cloud.name == "private").values(enabled=False))
    assert (await boot(api, boot_body("a", rid, n=4))).status_code == 202
    for _ in range(20):
        await api.plane.step()
    failed = [sv for sv in await api.plane.servers() if sv.reservation_id == rid]
    assert [(sv.status, sv.reserved_host_id) for sv in failed] == [("ERROR", None)] * 4
    async with api.plane.db.session() as s:
        await s.execute(update(Cloud).where(Cloud.name == "private").values(enabled=True))
    r = await boot(api, boot_body("b", rid))
    assert r.status_code == 202, r.text
