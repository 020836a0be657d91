"""A list page's entries (plain rows, api/compute/server_view.py) are exactly what one
server's show (an ORM entity) says, at every microversion that changes the view, for a
member and for an admin."""

from __future__ import annotations

import pytest

from tests.api.compute.helpers import create, who
from tests.api.conftest import Api

VERSIONS = ("2.1", "2.3", "2.16", "2.26", "2.47", "2.71", "2.73", "2.79")


@pytest.mark.parametrize("admin", [False, True])
async def test_list_entries_equal_show(api: Api, admin: bool) -> None:
    alice = await who(api)
    ids = [
        await create(api, alice, f"vm-{i}", version="2.1", metadata={"k": str(i)}) for i in range(3)
    ]

    async def placed() -> bool:
        servers = {s.id: s for s in await api.plane.servers()}
        return all(servers[i].addresses for i in ids)

    await api.plane.run_until(placed)
    for v in VERSIONS:
        hdr = {"X-OpenStack-Nova-API-Version": v, "OpenStack-API-Version": f"compute {v}"}
        if admin:
            hdr.update(api.admin.headers)
            path = "/compute/v2.1/servers/detail?all_tenants=1"
        else:
            hdr.update(alice.h())
            path = "/compute/v2.1/servers/detail"
        listed = (await api.client.get(path, headers=hdr)).json()["servers"]
        assert {s["id"] for s in listed} >= set(ids)
        for entry in listed:
            shown = (
                await api.client.get(f"/compute/v2.1/servers/{entry['id']}", headers=hdr)
            ).json()["server"]
            shown.pop("server_groups", None)  # show only (2.71)
            assert entry == shown, v
            assert entry["created"].endswith("Z") and len(entry["created"]) == 20
        mine = [e for e in listed if e["id"] in ids]
        assert all(e["addresses"] for e in mine)  # the MACs are compared too


def test_a_member_page_reads_no_attempt_log() -> None:
    from canopy.api.compute.server_view import list_columns

    member = [getattr(c, "name", None) for c in list_columns(detail=True, admin=False)]
    admin = [getattr(c, "name", None) for c in list_columns(detail=True, admin=True)]
    assert member[-1] == admin[-1] == "attempt_log"
    assert "NULL" in str(list_columns(detail=True, admin=False)[-1].element).upper()


PAGES = (
    "/compute/v2.1/servers/detail?limit=2",
    "/compute/v2.1/servers?limit=2",
    "/compute/v2.1/servers/detail?all_tenants=1&limit=2",
    "/compute/v2.1/servers/detail?all_tenants=1&deleted=1&limit=3",
    "/compute/v2.1/servers/detail?name=vm&sort_key=display_name&sort_dir=asc&limit=2",
    "/compute/v2.1/servers/detail?changes-since=2000-01-01T00:00:00Z&limit=2",
)


@pytest.mark.parametrize("admin", [False, True])
async def test_plain_reads_answer_what_the_engine_answers(
    api: Api, admin: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a list page's rows come straight from the driver (store/plain_reads.py);
    every page, and each next page after it, is byte for byte what the engine's path
    gives (the entries written from the rows, api/compute/page_json.py, against the
    full path's): servers with metadata, a fault, a lock, a description, tags and a
    deleted one."""
    if api.plane.db.plain_reads is None:
        pytest.skip("plain reads are SQLite's")
    alice = await who(api)
    ids = [
        await create(api, alice, f"vm-{i}", version="2.79", metadata={"k": str(i)})
        for i in range(5)
    ]

    async def placed() -> bool:
        servers = {s.id: s for s in await api.plane.servers()}
        return all(servers[i].addresses for i in ids)

    await api.plane.run_until(placed)
    h = alice.h("2.79")
    await api.client.post(
        f"/compute/v2.1/servers/{ids[0]}/action", headers=h, json={"lock": {"locked_reason": "x"}}
    )
    await api.client.put(
        f"/compute/v2.1/servers/{ids[1]}", headers=h, json={"server": {"description": "d é"}}
    )
    await api.client.delete(f"/compute/v2.1/servers/{ids[2]}", headers=h)
    for tag in ("b", "a"):
        tagged = await api.client.put(f"/compute/v2.1/servers/{ids[4]}/tags/{tag}", headers=h)
        assert tagged.status_code == 201, tagged.text
    async with api.plane.db.session() as s:
        from canopy.store.models import Server

        bad = await s.get(Server, ids[3])
        assert bad is not None
        bad.status, bad.fault_code, bad.fault_message = "ERROR", 500, "boom"
    base = api.admin.headers if admin else {"X-Auth-Token": alice.token}
    reads = api.plane.db.plain_reads
    ran: list[int] = []
    plain_run = type(reads)._run
    monkeypatch.setattr(type(reads), "_run", lambda *a: ran.append(1) or plain_run(*a))
    for v in VERSIONS:
        hdr = {**base, "X-OpenStack-Nova-API-Version": v}
        for first in PAGES:
            path: str | None = first
            pages = 0
            while path is not None and pages < 5:
                fast = await api.client.get(path, headers=hdr)
                api.plane.db.plain_reads = None
                try:
                    slow = await api.client.get(path, headers=hdr)
                finally:
                    api.plane.db.plain_reads = reads
                assert fast.status_code == slow.status_code, (v, path, fast.text)
                assert fast.content == slow.content, (v, path)
                links = fast.json().get("servers_links") if fast.status_code == 200 else None
                path = links[0]["href"].removeprefix("http://canopy.test") if links else None
                pages += 1
    assert len(ran) >= len(VERSIONS) * len(PAGES)  # the pages were the plain reads'
    # A marker that is no server is the same 400 either way.
    bad_marker = "/compute/v2.1/servers/detail?marker=nope"
    fast = await api.client.get(bad_marker, headers=base)
    assert fast.status_code == 400, fast.text
