"""The load of `loop_stalls`' "under load" variant, in a process of its own.

While the benchmark probes `/healthz`, this process (spawned, so its CPU and its GIL are
not the probe's) loads the `canopy up` under test the way a busy installation is loaded:

- drift: every sync interval, 1% of the sim cloud's servers change behind canopy's back
  (half stopped, half deleted: `bench.seed.drift`, what `sync_cost` does between polls),
  written straight into the sim's state file, which the `canopy up` child reads;
- creates: `creators` httpx clients send `POST /compute/v2.1/servers`, together at most
  `create_rate` per second (each waits its share of the interval after each answer);
- reads: `readers` keep-alive clients walk `GET /compute/v2.1/servers/detail?limit=100`
  page by page, together at most `read_rate` pages per second (0: as fast as answered,
  which saturates the one API process, so `/healthz` then measures queueing, not stalls).

Each client starts at a random moment of its interval (seeded) and keeps that phase, as
independent clients do: they sometimes coincide, never all at once. Started together, the
20 readers stayed in step and sent their 20 pages in the same instant every half second,
and a probe that came then waited behind all 20 (queueing behind a burst, 35-40 ms at
1,000 servers as at 100,000). `in_step=True` keeps that burst, to measure it.

It runs until `stop` is set, then puts one `Tally` on `out`.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx

from bench.http_load import Conn, next_marker
from bench.reads_setup import PAGE
from bench.seed import drift

CREATE = "/compute/v2.1/servers"
BODY = {"server": {"name": "load", "imageRef": "cirros", "flavorRef": "1"}}  # m1.tiny


@dataclass(frozen=True, slots=True)
class LoadSpec:
    servers: int  # the fleet, for the 1% that drifts
    state_file: str  # the sim's state file
    drift_every: float = 2.0  # the sync interval
    creators: int = 5
    create_rate: float = 10.0
    readers: int = 20
    read_rate: float = 40.0
    in_step: bool = False  # every client of a kind starts at once (a burst each interval)


@dataclass
class Tally:
    seconds: float = 0.0
    drifted: int = 0
    drifts: int = 0
    created: int = 0
    create_errors: int = 0
    pages: int = 0
    read_errors: int = 0
    first_error: str = ""
    read_ms: list[float] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)

    def summary(self) -> str:
        s = self.seconds or 1.0
        return (
            f"{self.drifted} drifted in {self.drifts} drifts, {self.created / s:.1f} creates/s"
            f" ({self.create_errors} errors), {self.pages / s:.1f} pages/s"
            f" ({self.read_errors} errors)"
        )


def _drifter(spec: LoadSpec, stop: Event, tally: Tally) -> None:
    rng = random.Random(7)
    k = max(1, spec.servers // 100)
    while not stop.wait(spec.drift_every):
        drift(Path(spec.state_file), k, rng)
        tally.drifted += k
        tally.drifts += 1


async def _paced(stop: Event, every: float, step: Any, after: float = 0.0) -> None:
    """After `after` seconds, call `step` every `every` seconds (or back to back, with 0)
    until `stop`."""
    await asyncio.sleep(after)
    while not stop.is_set():
        t0 = time.perf_counter()
        await step()
        await asyncio.sleep(max(0.0, every - (time.perf_counter() - t0)))


async def _load(
    port: int, token: str, spec: LoadSpec, stop: Event, ready: Event, tally: Tally
) -> None:
    headers = {"X-Auth-Token": token}
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    base = f"http://127.0.0.1:{port}"
    pool = [
        httpx.AsyncClient(base_url=base, headers=headers, limits=one, timeout=60)
        for _ in range(spec.creators)
    ]

    def creator(c: httpx.AsyncClient) -> Any:
        async def step() -> None:
            t0 = time.perf_counter()
            try:
                r = await c.post(CREATE, json=BODY)
            except httpx.HTTPError as e:
                tally.create_errors += 1
                tally.first_error = tally.first_error or f"{type(e).__name__}: {e}"
                return
            tally.create_ms.append((time.perf_counter() - t0) * 1000)
            if r.status_code == 202:
                tally.created += 1
            else:
                tally.create_errors += 1
                tally.first_error = tally.first_error or f"{r.status_code}: {r.text[:200]}"

        return step

    def reader() -> tuple[Conn, Any]:
        conn = Conn(port, headers)
        path = [PAGE]

        async def step() -> None:
            t0 = time.perf_counter()
            try:
                status, body = await conn.get(path[0])
            except (OSError, asyncio.IncompleteReadError) as e:
                tally.read_errors += 1
                tally.first_error = tally.first_error or f"{type(e).__name__}: {e}"
                await conn.close()
                conn.writer = None
                return
            tally.read_ms.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                tally.read_errors += 1
                path[0] = PAGE
                return
            tally.pages += 1
            marker = next_marker(body)
            path[0] = f"{PAGE}&marker={marker}" if marker else PAGE

        return conn, step

    readers = [reader() for _ in range(spec.readers)]
    create_every = spec.creators / spec.create_rate if spec.create_rate > 0 else 0.0
    read_every = spec.readers / spec.read_rate if spec.read_rate > 0 else 0.0
    phases = random.Random(11)

    def start(every: float) -> float:
        return 0.0 if spec.in_step else phases.uniform(0.0, every)

    ready.set()
    try:
        await asyncio.gather(
            *(_paced(stop, create_every, creator(c), start(create_every)) for c in pool),
            *(_paced(stop, read_every, step, start(read_every)) for _, step in readers),
        )
    finally:
        for c in pool:
            await c.aclose()
        for conn, _ in readers:
            await conn.close()


def run_load(port: int, token: str, spec: LoadSpec, stop: Event, ready: Event, out: Any) -> None:
    """The load process: drift in a thread, creates and reads on an event loop; `ready`
    is set once it is loading."""
    tally = Tally()
    t0 = time.perf_counter()
    drifter = threading.Thread(target=_drifter, args=(spec, stop, tally), daemon=True)
    drifter.start()
    try:
        asyncio.run(_load(port, token, spec, stop, ready, tally))
    except Exception as e:  # reported, so the benchmark shows why the load stopped
        tally.first_error = tally.first_error or f"load stopped: {type(e).__name__}: {e}"
        ready.set()
    drifter.join(30)
    tally.seconds = time.perf_counter() - t0
    out.put(tally)
