"""The Blazar v1 subset over HTTP: what python-blazarclient sends and reads."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from canopy.reservations.dates import OUTPUT_FORMAT
from tests.api.conftest import Api
from tests.api.tokens import caller

V1 = "/reservation/v1"


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def _body(name: str, start: datetime, end: datetime, amount: int = 2) -> dict[str, Any]:
    return {
        "name": name,
        "start_date": _when(start),
        "end_date": _when(end),
        "reservations": [
            {
                "affinity": "False",
                "disk_gb": 10,
                "memory_mb": 1024,
                "vcpus": 1,
                "amount": amount,
                "resource_type": "virtual:instance",
                "resource_properties": "",
            }
        ],
        "events": [],
        "before_end_date": None,
    }


def blazar_error(r: httpx.Response, code: int) -> str:
    """The message of Blazar's body for an error of a route's work (render_error_message:
    error_name is the code again)."""
    assert r.status_code == code, r.text
    body = r.json()
    assert set(body) == {"error_code", "error_message", "error_name"}, body
    assert body["error_code"] == code and body["error_name"] == code, body
    message: str = body["error_message"]
    return message


def flask_error(r: httpx.Response, code: int) -> str:
    """The message of Flask's body around Blazar's routes (make_json_error)."""
    assert r.status_code == code, r.text
    body = r.json()
    assert set(body) == {"error", "error_message"} and body["error"] == code, body
    message: str = body["error_message"]
    return message


async def test_versions_and_plugins(api: Api) -> None:
    r = await api.client.get("/reservation/", headers={"X-Auth-Token": ""})
    assert r.status_code == 300
    [v] = r.json()["versions"]
    assert v["id"] == "v1.0" and v["links"][0]["href"].endswith("/reservation/v1")
    r = await api.client.get(f"{V1}/plugins")
    assert {p["name"] for p in r.json()["plugins"]} == {
        "virtual:instance",
        "flavor:instance",
        "physical:host",
    }
    r = await api.client.get(f"{V1}/plugins", headers={"X-Auth-Token": "nope"})
    flask_error(r, 401)


async def test_a_lease_through_its_life(api: Api) -> None:
    clock = api.plane.clock
    t0 = clock.now()
    start, end = t0 + timedelta(hours=1), t0 + timedelta(hours=3)
    r = await api.client.post(f"{V1}/leases", json=_body("class", start, end))
    assert r.status_code == 201, r.text
    lease = r.json()["lease"]
    assert lease["status"] == "PENDING" and lease["name"] == "class"
    assert datetime.strptime(lease["start_date"], OUTPUT_FORMAT) == start.replace(tzinfo=None)
    [res] = lease["reservations"]
    assert res["status"] == "pending" and res["amount"] == 2 and res["flavor_id"] == res["id"]
    assert res["placement"][0]["cloud"] == "private"
    assert [e["event_type"] for e in lease["events"]] == [
        "start_lease",
        "before_end_lease",
        "end_lease",
    ]
    assert {e["status"] for e in lease["events"]} == {"UNDONE"}

    # The name is taken in this project.
    r = await api.client.post(f"{V1}/leases", json=_body("class", start, end))
    assert "already exists" in blazar_error(r, 409)

    # What `lease set --prolong-for 1h` sends after reading the end date.
    new_end = datetime.strptime(lease["end_date"], OUTPUT_FORMAT) + timedelta(hours=1)
    r = await api.client.put(
        f"{V1}/leases/{lease['id']}", json={"end_date": new_end.strftime("%Y-%m-%d %H:%M")}
    )
    assert r.status_code == 200, r.text
    assert datetime.strptime(r.json()["lease"]["end_date"], OUTPUT_FORMAT) == new_end

    r = await api.client.get(f"{V1}/leases")
    assert [x["id"] for x in r.json()["leases"]] == [lease["id"]]

    # Another project sees nothing of it.
    other = await caller(api.plane.db, clock, project="other", user="olga", role="member")
    r = await api.client.get(f"{V1}/leases/{lease['id']}", headers=other.headers)
    blazar_error(r, 404)
    r = await api.client.get(f"{V1}/leases", headers=other.headers)
    assert r.json()["leases"] == []
    # Nor its flavor.
    r = await api.client.get(f"/compute/v2.1/flavors/{res['id']}", headers=other.headers)
    assert r.status_code == 404

    r = await api.client.delete(f"{V1}/leases/{lease['id']}")
    assert r.status_code == 204
    blazar_error(await api.client.get(f"{V1}/leases/{lease['id']}"), 404)


async def test_refusals_are_blazar_errors_and_change_nothing(api: Api) -> None:
    t0 = api.plane.clock.now()
    start, end = t0 + timedelta(hours=1), t0 + timedelta(hours=2)
    big = _body("big", start, end, amount=10_000)
    message = blazar_error(await api.client.post(f"{V1}/leases", json=big), 409)
    assert "Not enough resources available" in message and "filter" in message
    host = _body("host", start, end)
    host["reservations"] = [{"resource_type": "physical:host", "min": 1, "max": 1}]
    message = blazar_error(await api.client.post(f"{V1}/leases", json=host), 400)
    assert "Missing parameter hypervisor_properties" in message
    json = {"Content-Type": "application/json"}
    r = await api.client.post(f"{V1}/leases", content=b"{not json", headers=json)
    flask_error(r, 400)
    assert (await api.client.get(f"{V1}/leases")).json()["leases"] == []


async def test_the_reservation_flavor_is_usable_only_while_active(api: Api) -> None:
    clock = api.plane.clock
    t0 = clock.now()
    member = await caller(api.plane.db, clock, project="demo", user="mia", role="member")
    body = _body("soon", t0 + timedelta(minutes=1), t0 + timedelta(hours=1))
    r = await api.client.post(f"{V1}/leases", json=body, headers=member.headers)
    assert r.status_code == 201, r.text
    rid = r.json()["lease"]["reservations"][0]["id"]
    flavor = f"/compute/v2.1/flavors/{rid}"
    assert (await api.client.get(flavor, headers=member.headers)).status_code == 404
    clock.advance(60)
    await api.plane.worker.leases.run_once()
    r = await api.client.get(flavor, headers=member.headers)
    assert r.status_code == 200 and r.json()["flavor"]["vcpus"] == 1
    # Not in the public list.
    r = await api.client.get("/compute/v2.1/flavors", headers=member.headers)
    assert rid not in {f["id"] for f in r.json()["flavors"]}


async def test_lease_set_reservation_amount(api: Api) -> None:
    """What `lease set --reservation id=<rid>,amount=N` sends: the amount moves, or a
    Blazar error says what failed and nothing changes."""
    t0 = api.plane.clock.now()
    r = await api.client.post(
        f"{V1}/leases", json=_body("grow", t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    )
    assert r.status_code == 201, r.text
    lease = r.json()["lease"]
    url, rid = f"{V1}/leases/{lease['id']}", lease["reservations"][0]["id"]
    r = await api.client.put(url, json={"reservations": [{"id": rid, "amount": 4}]})
    assert r.status_code == 200, r.text
    [res] = r.json()["lease"]["reservations"]
    assert res["amount"] == 4 and sum(p["amount"] for p in res["placement"]) == 4

    message = blazar_error(
        await api.client.put(url, json={"reservations": [{"id": rid, "amount": 10_000}]}), 409
    )
    assert "cannot grow from 4 to 10000" in message and "filter" in message
    for bad, words in (
        ({"reservations": [{"id": "x" * 5000, "amount": 1}]}, "must be a reservation's id"),
        ({"reservations": [{"id": str(uuid.uuid4()), "amount": 1}]}, "Invalid reservation IDs"),
        ({"reservations": [{"amount": 1}]}, "Missing parameter reservation ID"),
        ({"reservations": [{"id": rid, "amount": -1}]}, "amount must be between"),
        ({"reservations": [{"id": rid, "network_id": "n"}]}, "'network_id' cannot be updated"),
        ({"reservations": "all"}, "must be a list"),
        ({"reservations": [{"id": rid}] * 101}, "at most 100"),
    ):
        assert words in blazar_error(await api.client.put(url, json=bad), 400)
    other = await caller(api.plane.db, api.plane.clock, project="other", user="o", role="member")
    r = await api.client.put(
        url, json={"reservations": [{"id": rid, "amount": 1}]}, headers=other.headers
    )
    blazar_error(r, 404)
    r = await api.client.get(url)
    assert r.json()["lease"]["reservations"][0]["amount"] == 4
