"""The API's web server: X-Forwarded-For is believed only from the proxies configured in
`[api] forwarded_allow_ips`, so a local client cannot choose the address the login
throttle counts it by. Tested through a started uvicorn server, over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from canopy.cli.listen import Listener, bind, bound_port
from canopy.cli.serve import _server
from tests.api.identity.conftest import V3, Keystone, keystone

# Two failures lock an address; the per-pair limit is out of the way.
LIMITS = {"address_failure_attempts": 2, "lockout_failure_attempts": 0}


@asynccontextmanager
async def served(ks: Keystone) -> AsyncIterator[httpx.AsyncClient]:
    """`ks.app` behind uvicorn as `canopy api` starts it, and a client on 127.0.0.1."""
    sock = bind(Listener("the API", "127.0.0.1", 0, "[api] port", "[api] host"))
    server = _server(ks.app, forwarded_allow_ips=ks.settings.api.forwarded_allow_ips)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started
        url = f"http://127.0.0.1:{bound_port(sock)}"
        async with httpx.AsyncClient(base_url=url) as client:
            yield client
    finally:
        server.should_exit = True
        await task
        sock.close()


async def bad_login(client: httpx.AsyncClient, forwarded_for: str) -> int:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "bob", "domain": {"name": "Default"}, "password": "x"}
                },
            }
        }
    }
    r = await client.post(
        f"{V3}/auth/tokens", json=body, headers={"X-Forwarded-For": forwarded_for}
    )
    return r.status_code


async def test_x_forwarded_for_from_loopback_is_ignored_by_default(
    db_url: str, tmp_path: Path
) -> None:
    async with keystone(db_url, tmp_path, LIMITS) as ks, served(ks) as client:
        # Each guess claims another address; the throttle sees 127.0.0.1 every time.
        assert await bad_login(client, "192.0.2.1") == 401
        assert await bad_login(client, "192.0.2.2") == 401
        assert await bad_login(client, "192.0.2.3") == 429


async def test_x_forwarded_for_is_believed_from_a_configured_proxy(
    db_url: str, tmp_path: Path
) -> None:
    proxy = {"forwarded_allow_ips": ["127.0.0.0/8"]}
    async with keystone(db_url, tmp_path, LIMITS, api=proxy) as ks, served(ks) as client:
        assert await bad_login(client, "192.0.2.1") == 401
        assert await bad_login(client, "192.0.2.2") == 401
        assert await bad_login(client, "192.0.2.3") == 401  # three clients behind the proxy
        assert await bad_login(client, "192.0.2.1") == 401
        assert await bad_login(client, "192.0.2.1") == 429  # the first one's second failure


async def test_a_proxy_not_in_the_list_is_not_believed(db_url: str, tmp_path: Path) -> None:
    proxy = {"forwarded_allow_ips": ["10.0.0.5"]}
    async with keystone(db_url, tmp_path, LIMITS, api=proxy) as ks, served(ks) as client:
        assert await bad_login(client, "192.0.2.1") == 401
        assert await bad_login(client, "192.0.2.2") == 401
        assert await bad_login(client, "192.0.2.3") == 429
