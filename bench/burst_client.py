"""The client side of bench/burst.py: creates at once through HTTP, and a poller that notes
when each server is first seen ACTIVE."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

POLL_EVERY = 0.02
IMAGE = "cirros"
FLAVOR = "1"  # m1.tiny, 1 vcpu
NOVA = "/compute/v2.1"


@dataclass(slots=True)
class Burst:
    """One burst: per server, the wall time of its 202 and of the first list showing it
    ACTIVE (time.time())."""

    accepted: dict[str, float] = field(default_factory=dict)
    active: dict[str, float] = field(default_factory=dict)
    polls: list[float] = field(default_factory=list)  # each list request's duration
    cpu: float = 0.0  # CPU seconds the `canopy up` process spent from first create to done
    clouds: dict[str, str] = field(default_factory=dict)


async def _create(client: httpx.AsyncClient, name: str) -> tuple[str, float]:
    body = {"server": {"name": name, "imageRef": IMAGE, "flavorRef": FLAVOR}}
    r = await client.post(f"{NOVA}/servers", json=body)
    at = time.time()
    if r.status_code != 202:
        raise RuntimeError(f"create answered {r.status_code}: {r.text[:200]}")
    return str(r.json()["server"]["id"]), at


async def _watch(client: httpx.AsyncClient, out: Burst, n: int) -> None:
    """Until `n` servers are accepted and ACTIVE: list the project's servers still in BUILD
    every POLL_EVERY (an accepted server's first absence from that list is when it was seen
    ACTIVE: the list shrinks as they boot, so the poller costs the API less), then check
    them all. Runs beside the creates, so a server accepted first is watched at once."""
    while len(out.accepted) < n or not out.accepted.keys() <= out.active.keys():
        t0 = time.perf_counter()
        accepted = set(out.accepted)  # before the list: a later one may not be in it yet
        r = await client.get(f"{NOVA}/servers/detail", params={"status": "BUILD", "limit": 1000})
        at = time.time()
        out.polls.append(time.perf_counter() - t0)
        building = {sv["id"] for sv in r.json()["servers"]}
        for sid in accepted - building - out.active.keys():
            out.active[sid] = at
        await asyncio.sleep(max(0.0, POLL_EVERY - (time.perf_counter() - t0)))
    r = await client.get(f"{NOVA}/servers/detail", params={"limit": 1000})
    status = {sv["id"]: sv["status"] for sv in r.json()["servers"]}
    wrong = {sid: status.get(sid) for sid in out.accepted if status.get(sid) != "ACTIVE"}
    if wrong:
        raise RuntimeError(f"servers not ACTIVE after leaving BUILD: {wrong}")


async def _creates(client: httpx.AsyncClient, out: Burst, names: list[str]) -> None:
    async def one(name: str) -> None:
        sid, at = await _create(client, name)
        out.accepted[sid] = at

    await asyncio.gather(*(one(name) for name in names))


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(port: int, token: str, n: int, fill: int, pid: int, limit: float = 120.0) -> Burst:
    """Fill the private cloud (wait for it), then `n` creates at once; wait for ACTIVE."""
    headers = {"X-Auth-Token": token}
    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=60
    ) as client:
        filled = Burst()  # the fill is watched until ACTIVE, as the burst is
        for i in range(fill):
            sid, at = await _create(client, f"fill-{i}")
            filled.accepted[sid] = at
        await asyncio.wait_for(_watch(client, filled, fill), limit)
        out = Burst()
        names = [f"burst-{i}" for i in range(n)]
        cpu0 = cpu_of(pid)
        await asyncio.wait_for(
            asyncio.gather(_creates(client, out, names), _watch(client, out, n)), limit
        )
        out.cpu = cpu_of(pid) - cpu0
        return out
