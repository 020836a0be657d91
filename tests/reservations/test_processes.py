"""The capacity rule under real processes: `canopy api --workers 2` and two `canopy worker`
on one PostgreSQL database, a private sim cloud of 8 vcpus, the system clock.

Two servers run first. Then Blazar lease creates (POST /reservation/v1/leases, windows at
random minutes of the next hour, random amounts, sent in bursts of requests at once) and
ordinary boots (POST /compute/v2.1/servers) go over HTTP together: both API processes
create leases side by side while the two workers place the boots. When every boot is placed
(and ACTIVE) or waits for room in `schedule`, the store and the sim itself are read: at
every claim boundary and every minute of the hour, the claims on the cloud are within its
capacity; each accepted lease holds exactly its amount and a refused one (409) nothing, and
there were some of each; the servers the sim runs are the placed ones, nothing was refused
there for want of room, and they fit beside every window. What keeps two transactions from
both taking the last room is the clouds' row lock a lease create and a placement take
(`reservations/capacity.lock_clouds`, `controllers/placement.py`): without either one,
this test fails (a minute held 9 or more of 8 vcpus, in every run tried).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections.abc import Awaitable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from canopy.config import default_images, load_settings
from canopy.domain.clock import SystemClock
from canopy.providers.registry import build_drivers
from canopy.providers.sim.creates import Outcome
from canopy.providers.sim.driver import SimCompute
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud, Lease, Reservation, Server
from tests.cli.test_concurrent_start import CANOPY, START_DEADLINE, _env
from tests.cli.test_up import free_port
from tests.conftest import empty_database
from tests.controllers.procs import WorkerProcess

from .helpers import body

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CAPACITY = 8  # vcpus on `private`, the only cloud
RAM_MB = 16384
LEASES = 36
RUNNING = 2  # m1.tiny servers booted (and ACTIVE) first; the workers' placement is warm
BOOTS = 4  # m1.tiny boots sent among the leases: at most 6 of the 8 vcpus in all
PASSWORD = "canopy-processes-admin"
SPREAD = 2.0  # seconds over which the creates are sent
BURSTS = 3  # the leases go in this many bursts of requests at once
WAIT_SECONDS = 90.0  # only bounds a failure: a loaded machine starts four interpreters slowly


def _config(tmp_path: Path, url: str, port: int) -> Path:
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(
        f"""data_dir = "{tmp_path / "data"}"
[database]
url = "{url}"
pool_size = 20
[api]
port = {port}
[quotas]
instances = -1
cores = -1
ram = -1
[scheduler]
burst_threshold = 1.0
retry_seconds = 0.2
[controllers]
poll_seconds = 0.02
sync_seconds = 0.3
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = {CAPACITY}
host_ram_mb = {RAM_MB}
boot_seconds = 0.3
api_latency_ms = 2
"""
    )
    return cfg


def _start_api(cfg: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`canopy api --workers 2`: a parent that prepares the database, two API children."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [CANOPY, "api", "--workers", "2", "--config", str(cfg)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(CANOPY_ADMIN_PASSWORD=PASSWORD, CANOPY_API_PORT=str(port)),
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the parent stops its children), then SIGKILL if it is still there."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _wait(what: str, check: Any, log: Any) -> None:
    """Poll `check()` until it is true; fail after WAIT_SECONDS with `what` and `log()`."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        assert time.monotonic() < deadline, f"{what}:\n{log()}"
        await asyncio.sleep(0.2)


async def _token(client: httpx.AsyncClient) -> str:
    ident = {"user": {"name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}
    auth = {
        "identity": {"methods": ["password"], "password": ident},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }
    r = await client.post("/identity/v3/auth/tokens?nocatalog", json={"auth": auth})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def _held(claims: list[Claim], at: datetime) -> tuple[int, int]:
    """What the claims hold on `private` at the instant `at`: (vcpus, ram_mb)."""
    live = [c for c in claims if c.starts_at <= at and (c.ends_at is None or at < c.ends_at)]
    return sum(c.vcpus for c in live), sum(c.ram_mb for c in live)


async def test_two_apis_and_two_workers_never_oversubscribe_a_cloud_at_any_instant(
    pg_url: str, tmp_path: Path
) -> None:
    await empty_database(pg_url)
    port = free_port()
    cfg = _config(tmp_path, pg_url, port)
    settings = load_settings(cfg, env={})
    api_log = tmp_path / "api.log"
    workers = [WorkerProcess(cfg, tmp_path / f"worker{i}.log") for i in range(2)]

    def logs() -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
            for p in (api_log, *(w.log for w in workers))
            if p.exists()
        )

    api = _start_api(cfg, port, api_log)
    db = Database(pg_url)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:  # the parent migrates and seeds before its children serve
            assert api.poll() is None, logs()
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, logs()
            await asyncio.sleep(0.2)
        for w in workers:
            w.start()

        async def inventory() -> bool:  # before it the cloud's capacity is not known
            async with db.read() as s:
                cloud = await s.get(Cloud, "private", populate_existing=True)
            return cloud is not None and cloud.vcpus_capacity == CAPACITY

        await _wait("no inventory of private", inventory, logs)
        client.headers["X-Auth-Token"] = await _token(client)
        cirros = next(i.id for i in default_images() if i.name == "cirros")
        rng = random.Random()
        seed = rng.randrange(1 << 30)
        rng.seed(seed)
        t0 = SystemClock().now()
        answers: list[int] = []

        # Every lease's window and amount drawn before any request, in order: the seed in
        # a failure message names the same leases whatever order the requests wake in.
        drawn = [(rng.randint(2, 45), rng.randint(5, 30), rng.randint(1, 3)) for _ in range(LEASES)]

        async def lease(i: int, after: float) -> int:
            await asyncio.sleep(after)
            begin, length, amount = drawn[i]
            start = t0 + timedelta(minutes=begin)
            end = start + timedelta(minutes=length)
            b = body(f"l{i}", start, end, amount=amount)
            r = await client.post("/reservation/v1/leases", json=b)
            assert r.status_code in (201, 409), (r.status_code, r.text)
            answers.append(r.status_code)
            return r.status_code

        async def boot(name: str, after: float = 0.0) -> str:
            await asyncio.sleep(after)
            srv = {"name": name, "flavorRef": "1", "imageRef": cirros}
            r = await client.post("/compute/v2.1/servers", json={"server": srv})
            assert r.status_code == 202, (r.status_code, r.text)
            return str(r.json()["server"]["id"])

        async def settled() -> bool:
            """Every boot placed and ACTIVE, or tried and waiting for room in `schedule`."""
            async with db.read() as s:
                rows = list((await s.execute(select(Server))).scalars())
            for w in workers:
                assert w.alive(), logs()
            return all(
                (sv.cloud is not None and sv.status == "ACTIVE")
                or (sv.cloud is None and sv.phase == "schedule" and sv.schedule_deadline)
                for sv in rows
            )

        # Servers already running: open-ended claims from now on, under every window.
        running = await asyncio.gather(*(boot(f"running{i}") for i in range(RUNNING)))
        await _wait("the running servers did not start", settled, logs)
        # The boots over the first quarter of SPREAD seconds, the leases in BURSTS bursts
        # over all of it: the workers place some boots between lease creates (a boot's
        # open-ended claim needs room under every later window's peak, so once the leases
        # fill one the boots wait), and each burst's creates contend with one another.
        bursts = [n * SPREAD / BURSTS for n in range(BURSTS)]
        jobs: list[Awaitable[object]] = [lease(i, rng.choice(bursts)) for i in range(LEASES)]
        jobs += [boot(f"vm{i}", rng.uniform(0, SPREAD / 4)) for i in range(BOOTS)]
        await asyncio.gather(*jobs)
        await _wait("boots neither placed nor waiting", settled, logs)
        async with db.read() as s:
            claims = list((await s.execute(select(Claim))).scalars())
            res = {r.id: r for r in (await s.execute(select(Reservation))).scalars()}
            leases = list((await s.execute(select(Lease.name))).scalars())
            servers = list((await s.execute(select(Server))).scalars())
        drivers = build_drivers(settings, SystemClock())
        try:
            sim = drivers["private"]
            assert isinstance(sim, SimCompute)
            remote = await sim.all_servers()
            room = await sim.capacity()
            created = await sim.create_log()
        finally:
            for d in drivers.values():
                await d.close()
    finally:
        await client.aclose()
        await db.dispose()
        for w in workers:
            w.stop()
        _stop(api)

    # At the edge: some leases fitted, some were refused; a refused one left nothing.
    accepted = answers.count(201)
    assert 0 < accepted < LEASES, (answers, f"seed {seed}")
    assert answers.count(409) == LEASES - accepted
    assert len(leases) == len(res) == accepted
    # Each reservation holds exactly its amount, at its size, over its window.
    held: dict[str, int] = {}
    for c in claims:
        assert c.cloud == "private"
        if c.reservation_id is not None:
            r = res[c.reservation_id]
            assert c.vcpus == r.vcpus * c.instances and c.ends_at is not None
            held[r.id] = held.get(r.id, 0) + c.instances
    assert held == {r.id: r.amount for r in res.values()}, f"seed {seed}"
    # Within the cloud at every instant: every claim boundary, and every minute of the hour.
    placed = [sv for sv in servers if sv.cloud is not None]
    assert len(servers) == RUNNING + BOOTS and set(running) <= {sv.id for sv in placed}
    server_claims = [c for c in claims if c.server_id is not None]
    assert sorted(c.server_id or "" for c in server_claims) == sorted(sv.id for sv in placed)
    instants = {c.starts_at for c in claims} | {c.ends_at for c in claims if c.ends_at}
    instants |= {t0 + timedelta(minutes=m) for m in range(0, 75)}
    for at in sorted(instants):
        vcpus, ram = _held(claims, at)
        assert vcpus <= CAPACITY and ram <= RAM_MB, (at, vcpus, ram, f"seed {seed}")
    # What the sim itself runs: the placed servers, nothing refused for want of room, and
    # beside each window's reservations they still fit.
    assert sorted(r.canopy_id or "" for r in remote) == sorted(sv.id for sv in placed)
    assert not [str(r) for r in created if r.outcome is Outcome.REFUSED]
    assert room.vcpus_total == CAPACITY and room.vcpus_free is not None
    used = CAPACITY - room.vcpus_free
    assert used == len(placed)  # m1.tiny: one vcpu each
    reserved = [c for c in claims if c.reservation_id is not None]
    for at in sorted(instants):
        assert used + _held(reserved, at)[0] <= CAPACITY, (at, used, f"seed {seed}")
