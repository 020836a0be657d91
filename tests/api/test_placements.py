"""Placements with their explanations, and the admin view of servers, page by page."""

from __future__ import annotations

from typing import Any

from canopy.store.models import Flavor

from .conftest import Api, assert_fault


async def _all_pages(api: Api, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        r = await api.client.get(next_url)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        next_url = body["next"]
    return items


async def test_placements_carry_the_explanation(api: Api) -> None:
    [first] = await api.place(1)
    r = await api.client.get("/canopy/v1/placements")
    assert r.status_code == 200
    body = r.json()
    assert body["next"] is None
    [p] = body["items"]
    assert p["server_id"] == first
    assert p["attempt"] == 1
    assert p["cloud"] == "private"
    assert p["alternates"] == ["public"]
    assert p["reason"]
    names = [f["name"] for f in p["explanation"]["filters"]]
    assert names and all(f["before"] >= 1 for f in p["explanation"]["filters"])
    assert set(p["explanation"]["weights"]) >= {"private"}
    assert p["explanation"]["policy"] == p["reason"]
    assert p["created_at"].startswith("2026-01-01T")


async def test_placements_are_newest_first_and_page_by_marker(api: Api) -> None:
    ids = await api.place(3)
    later = await api.place(2)
    items = await _all_pages(api, "/canopy/v1/placements?limit=2")
    assert len(items) == 5
    assert [p["id"] for p in items] == sorted((p["id"] for p in items), reverse=True)
    assert {p["server_id"] for p in items[:2]} == set(later)
    assert {p["server_id"] for p in items} == set(ids + later)

    r = await api.client.get("/canopy/v1/placements?limit=2")
    next_url = r.json()["next"]
    assert next_url.startswith("http://canopy.test/canopy/v1/placements?")
    assert "limit=2" in next_url and f"marker={items[1]['id']}" in next_url


async def test_placements_of_one_server(api: Api) -> None:
    a, b = await api.place(2)
    for sid in (a, b):
        r = await api.client.get(f"/canopy/v1/servers/{sid}/placements")
        assert r.status_code == 200
        assert [p["server_id"] for p in r.json()["items"]] == [sid]
        r = await api.client.get("/canopy/v1/placements", params={"server_id": sid})
        assert [p["server_id"] for p in r.json()["items"]] == [sid]
    r = await api.client.get("/canopy/v1/servers/no-such-server/placements")
    assert_fault(r, 404, "itemNotFound")
    r = await api.client.get("/canopy/v1/placements", params={"server_id": "no-such-server"})
    assert r.json() == {"items": [], "next": None}


async def test_servers_list_filters_and_pages(api: Api) -> None:
    ids = await api.place(8)  # six stay private, two burst to public
    everything = await _all_pages(api, "/canopy/v1/servers?limit=3")
    assert sorted(s["id"] for s in everything) == sorted(ids)
    assert len({s["id"] for s in everything}) == 8  # no row twice across pages
    one = everything[0]
    for key in (
        "name",
        "project_id",
        "status",
        "task_state",
        "phase",
        "desired_state",
        "observed_state",
        "cloud",
        "remote_id",
        "attempts",
        "fault",
    ):
        assert key in one
    public = await _all_pages(api, "/canopy/v1/servers?cloud=public")
    assert len(public) == 2 and {s["cloud"] for s in public} == {"public"}
    r = await api.client.get("/canopy/v1/servers", params={"status": "ACTIVE"})
    assert all(s["status"] == "ACTIVE" for s in r.json()["items"])
    r = await api.client.get("/canopy/v1/servers", params={"project_id": api.plane.ctx.project_id})
    assert len(r.json()["items"]) == 8


async def test_server_detail_has_attempt_log_and_fault(api: Api) -> None:
    [sid] = await api.place(1)
    r = await api.client.get(f"/canopy/v1/servers/{sid}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == sid and body["cloud"] == "private" and body["attempts"] == 1
    assert body["attempt_log"] == [] and body["fault"] is None

    # A flavor no cloud can hold waits out the schedule timeout, then fails and says why.
    [big] = await api.plane.create(1, flavor="m1.xlarge", name="big")
    async with api.plane.db.session() as s:
        flavor = await s.get(Flavor, "5")
        assert flavor is not None
        flavor.vcpus = 100_000

    async def failed() -> bool:
        return (await api.plane.service.get(api.plane.ctx, big)).status == "ERROR"

    await api.plane.run_until(failed, advance=60.0)  # the schedule timeout is 600 s
    body = (await api.client.get(f"/canopy/v1/servers/{big}")).json()
    assert body["status"] == "ERROR" and body["cloud"] is None
    assert body["fault"]["code"] == 500
    assert "No valid host" in body["fault"]["message"]
    # One placement recorded while it waited for capacity, one when it gave up.
    items = (await api.client.get(f"/canopy/v1/servers/{big}/placements")).json()["items"]
    assert len(items) == 2 and all(p["cloud"] is None for p in items)
    assert "removed every cloud" in items[0]["reason"]


async def test_server_list_rejects_bad_filters(api: Api) -> None:
    await api.place(1)
    cases = {
        "status=RUNNING": "status",
        "cloud=nowhere": "cloud",
        "limit=0": "limit",
        "limit=1001": "limit",
        "limit=ten": "limit",
        "marker=no-such-server": "marker",
        "include_deleted=maybe": "include_deleted",
    }
    for query, field in cases.items():
        r = await api.client.get(f"/canopy/v1/servers?{query}")
        assert field in assert_fault(r, 400, "badRequest"), query
    r = await api.client.get("/canopy/v1/placements?marker=abc")
    assert "marker" in assert_fault(r, 400, "badRequest")
    r = await api.client.get(f"/canopy/v1/placements?marker={10**20}")
    assert_fault(r, 400, "badRequest")
    r = await api.client.get("/canopy/v1/servers/%00")
    assert_fault(r, 404, "itemNotFound")
