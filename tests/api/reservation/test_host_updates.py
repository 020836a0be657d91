"""Changing a host reservation over HTTP (`lease set --reservation id=<rid>,min=..,max=..,
hypervisor_properties=..,resource_properties=..` and new dates), and a held host's extra
capabilities (`host set --extra`), with Blazar's rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.api.conftest import Api
from tests.api.reservation.test_host_reservations import (
    HOSTS,
    V1,
    _active_lease,
    _all_active,
    api,
    boot,
    boot_body,
    lease_body,
    register,
)
from tests.api.reservation.test_leases import blazar_error

__all__ = ["api"]  # the fixture

GPU = '["=", "$gpu", "True"]'


async def _set(api: Api, lease: dict[str, Any], **change: Any) -> Any:
    rid = lease["reservations"][0]["id"]
    return await api.client.put(
        f"{V1}/leases/{lease['id']}", json={"reservations": [{"id": rid, **change}]}
    )


async def _shown(api: Api, lease: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.get(f"{V1}/leases/{lease['id']}")
    assert r.status_code == 200, r.text
    res: dict[str, Any] = r.json()["lease"]["reservations"][0]
    return res


async def _held(api: Api) -> dict[str, list[str]]:
    """Per host id, the reservations holding it (os-hosts allocations)."""
    r = await api.client.get(f"{HOSTS}/allocations")
    return {a["resource_id"]: [x["id"] for x in a["reservations"]] for a in r.json()["allocations"]}


async def test_a_pending_host_reservation_is_reallocated_keeping_matching_hosts(api: Api) -> None:
    h1, h2, h3, h4 = await register(api, "private:h1", "private:h2", "private:h3", "private:h4")
    for h, gpu in ((h1, "True"), (h2, "True"), (h3, "False"), (h4, "False")):
        assert (await api.client.put(f"{HOSTS}/{h}", json={"values": {"gpu": gpu}})).is_success
    t0 = api.plane.clock.now()
    start, end = t0 + timedelta(hours=1), t0 + timedelta(hours=2)
    body = lease_body("a", start, end, min=1, max=1, resource_properties=GPU)
    lease = (await api.client.post(f"{V1}/leases", json=body)).json()["lease"]
    rid = lease["reservations"][0]["id"]
    assert lease["reservations"][0]["hosts"] == [h1]

    # A higher max tops up with free matching hosts (h3, h4 do not match).
    r = await _set(api, lease, max=3)
    assert r.status_code == 200, r.text
    res = await _shown(api, lease)
    assert (res["min"], res["max"], res["hosts"]) == (1, 3, [h1, h2])
    assert res["placement"] == [{"cloud": "private", "amount": 2, "reason": "hosts h1, h2"}]
    # Any host: the two kept, one more added.
    r = await _set(api, lease, resource_properties="")
    assert r.status_code == 200, r.text
    assert (await _shown(api, lease))["hosts"] == [h1, h2, h3]
    # A lower max keeps the first hosts.
    assert (await _set(api, lease, max=1)).status_code == 200
    assert (await _shown(api, lease))["hosts"] == [h1]
    # A query h1 no longer matches: it goes, a matching free host comes.
    r = await _set(api, lease, resource_properties='["=", "$gpu", "False"]', min=1, max=1)
    assert r.status_code == 200, r.text
    res = await _shown(api, lease)
    assert res["hosts"] == [h3] and res["resource_properties"] == '["=", "$gpu", "False"]'
    assert (await _held(api))[h3] == [rid] and (await _held(api))[h1] == []

    # Another lease takes h4 over the window: A cannot reach min=2, and nothing changes.
    other = lease_body("b", start, end, min=1, max=1, resource_properties='["=", "$gpu", "False"]')
    assert (await api.client.post(f"{V1}/leases", json=other)).status_code == 201
    before = await _shown(api, lease)
    message = blazar_error(await _set(api, lease, min=2, max=2), 409)
    assert "Not enough hosts available" in message and "needs at least 2 hosts" in message
    assert "0 of them free" in message
    assert await _shown(api, lease) == before

    # Bad changes are 400 and change nothing.
    bad: list[tuple[dict[str, Any], str]] = [
        ({"min": 3, "max": 2}, "Max must be equal to or larger than min"),
        ({"min": 2}, "Max must be equal to or larger than min"),  # max is 1
        ({"max": 0}, "max must be between 1"),
        ({"hypervisor_properties": "[>="}, "Malformed requirements in hypervisor_properties"),
        ({"resource_properties": '["~", "$a", "1"]'}, "unknown operator"),
        ({"amount": 2}, "update its min, max"),
        ({"affinity": "True"}, "has no affinity"),
        ({"before_end": "default"}, "cannot be updated"),
    ]
    for change, said in bad:
        message = blazar_error(await _set(api, lease, **change), 400)
        assert said in message, (change, message)
    assert await _shown(api, lease) == before


async def test_moving_a_pending_host_lease_swaps_a_taken_host(api: Api) -> None:
    h1, h2 = await register(api, "private:h1", "private:h2")
    t0 = api.plane.clock.now()
    a = lease_body("a", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    b = lease_body("b", t0 + timedelta(hours=3), t0 + timedelta(hours=4))
    la = (await api.client.post(f"{V1}/leases", json=a)).json()["lease"]
    lb = (await api.client.post(f"{V1}/leases", json=b)).json()["lease"]
    assert la["reservations"][0]["hosts"] == lb["reservations"][0]["hosts"] == [h1]
    # Prolonged over b's window, a gives h1 up and holds h2 (Blazar's reallocation).
    r = await api.client.put(f"{V1}/leases/{la['id']}", json={"prolong_for": "2h"})
    assert r.status_code == 200, r.text
    assert (await _shown(api, la))["hosts"] == [h2]
    held = await _held(api)
    assert held[h1] == [lb["reservations"][0]["id"]]
    assert held[h2] == [la["reservations"][0]["id"]]
    # Shrinking keeps the host.
    r = await api.client.put(f"{V1}/leases/{la['id']}", json={"reduce_by": "1h"})
    assert r.status_code == 200, r.text
    assert (await _shown(api, la))["hosts"] == [h2]


async def test_an_active_host_reservation_only_gains_hosts(api: Api) -> None:
    h1, h2, h3 = await register(api, "private:h1", "private:h2", "private:h3")
    lease = await _active_lease(api, min=1, max=1)
    rid = lease["reservations"][0]["id"]
    assert lease["reservations"][0]["hosts"] == [h1]
    # m1.large is 4 vcpus, a whole host: one fits.
    r = await boot(api, boot_body("one", rid, flavor="m1.large"))
    assert r.status_code == 202, r.text
    await api.plane.run_until(lambda: _all_active(api, [r.json()["server"]["id"]]))
    assert (await boot(api, boot_body("two", rid, flavor="m1.large"))).status_code == 403
    # A higher max adds a host, usable at once.
    r = await _set(api, lease, max=2)
    assert r.status_code == 200, r.text
    assert (await _shown(api, lease))["hosts"] == [h1, h2]
    r = await boot(api, boot_body("two", rid, flavor="m1.large"))
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    await api.plane.run_until(lambda: _all_active(api, [sid]))
    [server] = [sv for sv in await api.plane.servers() if sv.id == sid]
    assert await api.plane.sim("private").host_of(server.remote_id or "") == "h2"

    # Losing a host while active is refused, whatever the reason; nothing changes.
    before = await _shown(api, lease)
    for change, said in (
        ({"max": 1}, "beyond its max of 1"),
        ({"resource_properties": '["=", "$service_name", "h1"]'}, "does not match its queries"),
    ):
        message = blazar_error(await _set(api, lease, **change), 409)
        assert "Not enough hosts available" in message and "is active" in message
        assert said in message and "private:h2" in message
    t0 = api.plane.clock.now()
    later = lease_body("later", lease["end_date"][:16].replace("T", " "), t0 + timedelta(hours=5))
    later["reservations"][0].update(min=3, max=3)
    assert (await api.client.post(f"{V1}/leases", json=later)).status_code == 201
    r = await api.client.put(f"{V1}/leases/{lease['id']}", json={"prolong_for": "1h"})
    message = blazar_error(r, 409)
    assert "held by another reservation in the new window" in message
    assert await _shown(api, lease) == before
    # Within its window h3 is free (the later lease takes it from the end on): it is added.
    r = await _set(api, lease, min=3, max=3)
    assert r.status_code == 200, r.text
    assert (await _shown(api, lease))["hosts"] == [h1, h2, h3]
    # A fourth host there is not (h4 is not registered): 409, nothing changes.
    before = await _shown(api, lease)
    message = blazar_error(await _set(api, lease, min=4, max=4), 409)
    assert "needs at least 4 hosts" in message and "of the 0 other registered hosts" in message
    assert await _shown(api, lease) == before


async def test_a_capability_a_reservation_names_cannot_change(api: Api) -> None:
    h1, h2 = await register(api, "private:h1", "private:h2", gpu="True", rack="r1")
    t0 = api.plane.clock.now()
    body = lease_body(
        "gpu", t0 + timedelta(hours=1), t0 + timedelta(hours=2), resource_properties=GPU
    )
    lease = (await api.client.post(f"{V1}/leases", json=body)).json()["lease"]
    assert lease["reservations"][0]["hosts"] == [h1]
    for values in ({"gpu": "False"}, {"gpu": None}, {"gpu": "False", "rack": "r2"}):
        r = await api.client.put(f"{HOSTS}/{h1}", json={"values": values})
        message = blazar_error(r, 409)
        assert f"Can't add extracapabilities ['gpu'] to Host {h1}" in message
        assert lease["reservations"][0]["id"] in message
    shown = (await api.client.get(f"{HOSTS}/{h1}")).json()["host"]
    assert (shown["gpu"], shown["rack"]) == ("True", "r1")  # nothing changed
    # Keys no reservation names, the same value, and other hosts: fine.
    for h, values in (
        (h1, {"rack": "r2", "ssd": "yes"}),
        (h1, {"gpu": "True"}),
        (h2, {"gpu": "False"}),
    ):
        r = await api.client.put(f"{HOSTS}/{h}", json={"values": values})
        assert r.status_code == 200, r.text
    # hypervisor_properties may name a capability too: it holds it just as well.
    b = lease_body(
        "rack",
        t0 + timedelta(hours=3),
        t0 + timedelta(hours=4),
        hypervisor_properties='["=", "$rack", "r2"]',
    )
    assert (await api.client.post(f"{V1}/leases", json=b)).status_code == 201
    message = blazar_error(await api.client.put(f"{HOSTS}/{h1}", json={"rack": "r3"}), 409)
    assert "['rack']" in message
    # Once the leases are gone, the host is the admin's to change.
    for r in (await api.client.get(f"{V1}/leases")).json()["leases"]:
        assert (await api.client.delete(f"{V1}/leases/{r['id']}")).status_code == 204
    r = await api.client.put(f"{HOSTS}/{h1}", json={"values": {"gpu": "False", "rack": None}})
    assert r.status_code == 200, r.text
    assert "rack" not in r.json()["host"] and r.json()["host"]["gpu"] == "False"
