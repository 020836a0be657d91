"""The app counts the requests it serves, so sync's slices let them go first
(canopy/api_first.py)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
from starlette.types import Message

from canopy.api.app import create_app
from canopy.api_first import requests
from tests.api.conftest import Api
from tests.api.tokens import caller
from tests.controllers.harness import make_plane


async def test_the_app_counts_a_request_while_it_reads_the_body(api: Api) -> None:
    body_asked = asyncio.Event()
    body_given = asyncio.Event()
    sent: list[Message] = []

    async def receive() -> Message:
        body_asked.set()
        await body_given.wait()
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/compute/v2.1/servers",
        "raw_path": b"/compute/v2.1/servers",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        "client": ("127.0.0.1", 1),
        "server": ("canopy.test", 80),
    }
    served = asyncio.create_task(api.app(scope, receive, send))
    await body_asked.wait()
    assert requests().in_flight == 1
    body_given.set()
    await served
    assert sent[0]["status"] == 401  # no token: answered, and no longer in flight
    assert requests().in_flight == 0 and requests().idle.is_set()


ELSEWHERE = """
[[clouds]]
name = "elsewhere"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 16384
"""


async def test_apps_in_one_process_share_routes_but_answer_from_their_own_state(
    api: Api, tmp_path: Path, sqlite_template: Path
) -> None:
    """The route table is built once per process (api/app.py `_routes`): a second app,
    over another database and configuration, answers from its own and knows none of the
    first one's tokens or servers."""
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    shutil.copy(sqlite_template, other_dir / "canopy.db")
    other_url = f"sqlite+aiosqlite:///{other_dir / 'canopy.db'}"
    other = await make_plane(other_url, other_dir, toml=ELSEWHERE)
    try:
        app = create_app(settings=other.settings, db=other.db, clock=other.clock)
        ours = {id(r) for r in api.app.router.routes}
        assert ours & {id(r) for r in app.router.routes}, "the two apps share no route"
        admin = await caller(other.db, other.clock, project="admin", user="admin", role="admin")
        await api.place(1)
        zones = "/compute/v2.1/os-availability-zone"
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://canopy.test"
        ) as c:
            r = await c.get(zones, headers=admin.headers)
            assert r.status_code == 200, r.text
            assert [z["zoneName"] for z in r.json()["availabilityZoneInfo"]] == ["elsewhere"]
            r = await c.get("/compute/v2.1/servers?all_tenants=1", headers=admin.headers)
            assert r.json()["servers"] == []
            r = await c.get(zones, headers=api.admin.headers)
            assert r.status_code == 401, r.text
        r = await api.client.get(zones)
        assert sorted(z["zoneName"] for z in r.json()["availabilityZoneInfo"]) == [
            "private",
            "public",
        ]
        r = await api.client.get("/compute/v2.1/servers?all_tenants=1")
        assert len(r.json()["servers"]) == 1
    finally:
        await other.close()
