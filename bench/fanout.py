"""The baseline of bench/list_latency.py: a stateless fan-out gateway in the style of
Tricircle's API, which answers a server list by asking every cloud and merging.

The gateway is a FastAPI app under uvicorn (in a child process, reached over real HTTP).
Each of its clouds is sim-like: it holds its share of the servers (as rendered entries,
sorted newest first) and answers "a page after this key" after `latency` seconds, the
round trip to a cloud's API. For each `GET /servers/detail?limit=N` the gateway asks
every cloud for its first N, then merges the pages by (created, id) and keeps N:
`?mode=sequential` one cloud after the other (a script looping over clouds), or
`?mode=concurrent` all at once (asyncio.gather). Its bodies are encoded by orjson, as
canopy's are, so the comparison is about the fan-out, not the encoder.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Response


@dataclass
class FakeCloud:
    """A cloud's server list: entries newest first, answered after `latency`."""

    entries: list[dict[str, Any]]
    latency: float

    async def page(self, limit: int) -> list[dict[str, Any]]:
        await asyncio.sleep(self.latency)
        return self.entries[:limit]


def _entry(cloud: int, i: int, at: datetime) -> dict[str, Any]:
    sid = f"{cloud:04d}{i:028d}"
    return {
        "id": sid,
        "name": f"web{cloud}-{i}",
        "status": "ACTIVE",
        "created": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "addresses": {"private": [{"addr": f"10.{cloud}.{i // 256 % 256}.{i % 256}"}]},
        "links": [{"rel": "self", "href": f"http://cloud{cloud}/v2.1/servers/{sid}"}],
    }


def make_clouds(clouds: int, servers: int, latency: float) -> list[FakeCloud]:
    when = datetime.now(UTC) - timedelta(hours=1)
    per = servers // clouds
    out = []
    for c in range(clouds):
        entries = [_entry(c, i, when + timedelta(seconds=c, microseconds=i)) for i in range(per)]
        entries.reverse()  # newest first
        out.append(FakeCloud(entries, latency))
    return out


def gateway(clouds: list[FakeCloud]) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b"ok")

    @app.get("/servers/detail")
    async def detail(limit: int = 100, mode: str = "concurrent") -> Response:
        if mode == "sequential":
            pages = [await c.page(limit) for c in clouds]
        else:
            pages = list(await asyncio.gather(*(c.page(limit) for c in clouds)))
        merged = heapq.merge(*pages, key=lambda e: (e["created"], e["id"]), reverse=True)
        body = {"servers": list(itertools.islice(merged, limit))}
        return Response(orjson.dumps(body), media_type="application/json")

    return app


def serve(port: int, clouds: int, servers: int, latency: float) -> None:
    """The child process: the gateway over `clouds` fake clouds."""
    app = gateway(make_clouds(clouds, servers, latency))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http="h11",  # as canopy's own server parses (cli/serve.py)
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    asyncio.run(uvicorn.Server(config).serve())
