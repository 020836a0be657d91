"""Blazar's os-hosts over HTTP: a cloud admin registers the hosts a cloud reported."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from canopy.domain.states import Ability
from canopy.providers.base import Abilities
from canopy.store.models import ReservableHost
from tests.api.conftest import Api
from tests.api.reservation.test_leases import blazar_error, flask_error
from tests.api.tokens import caller

V1 = "/reservation/v1"
HOSTS = f"{V1}/os-hosts"


async def _count(api: Api) -> int:
    async with api.plane.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(ReservableHost))).scalar_one())


async def test_register_list_show_update_delete(api: Api) -> None:
    # The private cloud has one host (h1): its bare name is unique, so it is enough.
    r = await api.client.post(HOSTS, json={"name": "private:h1", "gpu": "True", "rack": 4})
    assert r.status_code == 201, r.text
    host = r.json()["host"]
    assert host["id"].isdigit()
    assert host["hypervisor_hostname"] == "private:h1"
    assert (host["vcpus"], host["memory_mb"], host["local_gb"]) == (8, 65536, 2000)
    assert host["hypervisor_type"] == "sim" and host["service_name"] == "h1"
    assert host["trust_id"] is None and host["reservable"] is True
    assert host["gpu"] == "True" and host["rack"] == "4"  # extra capabilities, as strings
    assert host["created_at"].endswith(".000000") and host["updated_at"] is None
    for key in ("cpu_info", "hypervisor_type", "service_name"):
        assert key in host

    r = await api.client.get(HOSTS)
    assert [h["id"] for h in r.json()["hosts"]] == [host["id"]]
    r = await api.client.get(f"{HOSTS}/{host['id']}")
    assert r.json()["host"] == host

    # python-blazarclient sends updates under "values"; a null value removes a capability.
    r = await api.client.put(f"{HOSTS}/{host['id']}", json={"values": {"gpu": None, "ssd": "yes"}})
    assert r.status_code == 200, r.text
    updated = r.json()["host"]
    assert "gpu" not in updated and updated["ssd"] == "yes" and updated["rack"] == "4"
    assert updated["updated_at"] is not None

    r = await api.client.get(f"{HOSTS}/properties")
    assert r.json() == {"resource_properties": [{"property": "rack"}, {"property": "ssd"}]}
    r = await api.client.get(f"{HOSTS}/properties", params={"detail": "True"})
    assert r.json()["resource_properties"][0] == {
        "property": "rack",
        "private": False,
        "values": ["4"],
    }
    # No reservation holds it (tests/api/reservation/test_host_reservations.py: some do).
    r = await api.client.get(f"{HOSTS}/allocations")
    assert r.json() == {"allocations": [{"resource_id": host["id"], "reservations": []}]}
    r = await api.client.get(f"{HOSTS}/{host['id']}/allocation")
    assert r.json() == {"allocation": {"resource_id": host["id"], "reservations": []}}

    r = await api.client.delete(f"{HOSTS}/{host['id']}")
    assert r.status_code == 204
    assert (await api.client.get(HOSTS)).json() == {"hosts": []}
    blazar_error(await api.client.get(f"{HOSTS}/{host['id']}"), 404)


async def test_a_bare_name_is_enough_when_one_cloud_has_it(api: Api) -> None:
    # h2 is only on the public cloud (private has one host); h1 is on both.
    r = await api.client.post(HOSTS, json={"name": "h2"})
    assert r.status_code == 201, r.text
    assert r.json()["host"]["hypervisor_hostname"] == "public:h2"
    message = blazar_error(await api.client.post(HOSTS, json={"name": "h1"}), 400)
    assert "more than one cloud" in message and "private:h1" in message
    message = blazar_error(await api.client.post(HOSTS, json={"name": "public:h2"}), 409)
    assert "already registered" in message
    assert await _count(api) == 1


async def test_only_a_cloud_admin(api: Api) -> None:
    member = await caller(api.plane.db, api.plane.clock, project="demo", role="member")
    proj_admin = await caller(
        api.plane.db, api.plane.clock, project="demo", user="pa", role="admin"
    )
    for who in (member, proj_admin):
        for method, path, body in (
            ("GET", HOSTS, None),
            ("POST", HOSTS, {"name": "private:h1"}),
            ("GET", f"{HOSTS}/allocations", None),
            ("GET", f"{HOSTS}/properties", None),
            ("GET", f"{HOSTS}/1", None),
            ("PUT", f"{HOSTS}/1", {"values": {"a": "b"}}),
            ("DELETE", f"{HOSTS}/1", None),
            ("GET", f"{HOSTS}/1/allocation", None),
        ):
            r = await api.client.request(method, path, json=body, headers=who.headers)
            blazar_error(r, 403)
    assert await _count(api) == 0


BAD: list[tuple[Any, str]] = [
    ({}, "'name' is required"),
    ({"name": ""}, "'name' is required"),
    ({"name": 7}, "'name' is required"),
    ({"name": "x" * 400}, "'name' is required"),
    ({"name": "nowhere:h1"}, "there is no cloud 'nowhere'"),
    ({"name": "private:h9"}, "has no host 'h9'"),
    ({"name": "h9999"}, "no cloud reports a host of that name"),
    ({"name": "private:h1", "vcpus": 99}, "'vcpus' is a field of the host"),
    ({"name": "private:h1", "gpu": {"a": 1}}, "must be a string, number or boolean"),
    ({"name": "private:h1", "gpu": None}, "must be a string, number or boolean"),
    ({"name": "private:h1", "k": "v" * 300}, "at most 255 characters"),
    ({"name": "private:h1", "k" * 65: "v"}, "1 to 64 characters"),
    ([1, 2], ""),
    ("text", ""),
]


async def test_bad_input_is_400_and_changes_nothing(api: Api) -> None:
    for body, said in BAD:
        message = blazar_error(await api.client.post(HOSTS, json=body), 400)
        assert said in message, (body, message)
    r = await api.client.post(HOSTS, content=b"{nope", headers={"Content-Type": "application/json"})
    flask_error(r, 400)
    assert await _count(api) == 0

    host = (await api.client.post(HOSTS, json={"name": "private:h1"})).json()["host"]
    for body in ({"values": [1]}, {"values": {"vcpus": "1"}}, {"values": {"a": {"b": 1}}}):
        blazar_error(await api.client.put(f"{HOSTS}/{host['id']}", json=body), 400)
    assert (await api.client.get(f"{HOSTS}/{host['id']}")).json()["host"] == host


async def test_unknown_ids_are_404(api: Api) -> None:
    for hid in ("1", "999999", "abc", "-1", "9" * 40):
        blazar_error(await api.client.get(f"{HOSTS}/{hid}"), 404)
        blazar_error(await api.client.get(f"{HOSTS}/{hid}/allocation"), 404)
        blazar_error(await api.client.put(f"{HOSTS}/{hid}", json={"values": {"a": "b"}}), 404)
        blazar_error(await api.client.delete(f"{HOSTS}/{hid}"), 404)


async def test_a_cloud_without_the_hosts_ability_is_400_naming_it(api: Api) -> None:
    why = "EC2 does not expose the physical hosts behind its instances"
    api.plane.rt.drivers["public"].abilities = Abilities(missing={Ability.HOSTS: why})
    await api.plane.worker.inventory.run_once(force=True)
    message = blazar_error(await api.client.post(HOSTS, json={"name": "public:h2"}), 400)
    assert "lacks the 'hosts' ability" in message and why in message
    # Its hosts are no longer known by their bare names either, and the refusal says why.
    message = blazar_error(await api.client.post(HOSTS, json={"name": "h2"}), 400)
    assert "public lack the 'hosts' ability" in message
    r = await api.client.get("/canopy/v1/clouds/public")
    assert r.json()["abilities"]["hosts"] == {"available": False, "reason": why}
    assert await _count(api) == 0


async def test_a_hint_naming_no_reservation_is_refused_not_ignored(api: Api) -> None:
    body = {
        "server": {"name": "vm", "imageRef": "cirros", "flavorRef": "1", "networks": "none"},
        "os:scheduler_hints": {"reservation": "6f1c6c58-0000-4000-8000-000000000000"},
    }
    r = await api.client.post(
        "/compute/v2.1/servers", json=body, headers={"OpenStack-API-Version": "compute 2.79"}
    )
    assert r.status_code == 400, r.text
    assert "reservation 6f1c6c58-0000-4000-8000-000000000000 could not be found" in r.text
    assert await api.plane.servers() == []
