"""kill -9 of a real `canopy up` while several HTTP clients create and delete servers: once
it has settled, the project's quota usage counters (store/quota_usage.py) and the clouds'
claim counters (store/claim_counts.py) equal a full count of their rows, and no repair
was ever needed for it (housekeeping's repair fences, `repairs` and `counters_repaired`,
are still 0: a drift it corrected on the way would not pass either)."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, not_, select

from canopy.bootstrap import ensure_project, open_database, seed
from canopy.config import load_settings
from canopy.domain.clock import SystemClock
from canopy.services import identity, tokens
from canopy.services.passwords import hash_password
from canopy.store import claim_counts, quota_usage
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud, Project, Server
from tests.controllers.procs import UpProcess, in_flight

pytestmark = pytest.mark.slow

SERVERS = "/compute/v2.1/servers"
CLIENTS = 4
KILLS = 3
QUOTAS = {"instances": 100_000, "cores": 1_000_000, "ram": 1_000_000_000}  # finite: checked


# Quick boots and calls, so waves of creates and deletes finish between kills; short
# leases, so the restarted process takes over what the dead one held.
CLOUD = """
[clouds.sim]
hosts = 8
host_vcpus = 64
boot_seconds = 1.0
api_latency_ms = 30
"""
TOML = f"""[worker]
metrics = false
[controllers]
poll_seconds = 0.05
sync_seconds = 0.3
lease_seconds = 1.5
call_timeout_seconds = 2.0
backoff_base_seconds = 0.1
backoff_max_seconds = 0.5
[[clouds]]
name = "private"
tier = 0
{CLOUD}
[[clouds]]
name = "public"
tier = 1
{CLOUD}price_per_vcpu_hour = 0.05
"""


async def _token(db: Database, project_id: str, now: datetime) -> str:
    async with db.session() as s:
        p = await s.get(Project, project_id)
        assert p is not None
        u = await identity.create_user(
            s, "loader", hash_password("secret"), now, default_project_id=p.id
        )
        await identity.grant(s, u.id, p.id, "member")
        token, _ = await tokens.issue_token(s, u, p, now, 3600)
        return token


class Clients:
    """`CLIENTS` clients creating servers (1 or 2 at a time) and deleting ones they made,
    against whichever process is up, until stopped; transport errors (a kill) are expected."""

    def __init__(self, up: UpProcess, token: str, rng: random.Random) -> None:
        self.up = up
        self.headers = {"X-Auth-Token": token}
        self.rng = rng
        self.stopped = False
        self.accepted = 0
        self.deleted = 0
        self.cut = 0  # requests a kill cut short
        self.bad: list[str] = []  # answers that are neither success nor a quota refusal

    async def one(self, mine: list[str]) -> None:
        async with httpx.AsyncClient(headers=self.headers, timeout=10) as c:
            while not self.stopped:
                base = f"http://127.0.0.1:{self.up.port}"
                try:
                    if mine and self.rng.random() < 0.4:
                        sid = mine.pop(self.rng.randrange(len(mine)))
                        r = await c.delete(f"{base}{SERVERS}/{sid}")
                        if r.status_code == 204:
                            self.deleted += 1
                        elif r.status_code not in (404, 409):
                            self.bad.append(f"DELETE {r.status_code} {r.text[:200]}")
                    else:
                        n = self.rng.choice((1, 2))
                        body = {
                            "server": {
                                "name": "w",
                                "imageRef": "cirros",
                                "flavorRef": self.rng.choice(("1", "2")),
                                "min_count": n,
                                "max_count": n,
                            }
                        }
                        r = await c.post(f"{base}{SERVERS}", json=body)
                        if r.status_code == 202:
                            self.accepted += n
                            if n == 1:
                                mine.append(r.json()["server"]["id"])
                        else:
                            self.bad.append(f"POST {r.status_code} {r.text[:200]}")
                except httpx.TransportError:
                    self.cut += 1
                    await asyncio.sleep(0.05)

    async def run(self) -> None:
        await asyncio.gather(*(self.one([]) for _ in range(CLIENTS)))


async def _settled(db: Database, up: UpProcess, within: float) -> None:
    """Until no row is in the middle of a step (creates placed and built, deletes done)."""
    deadline = time.monotonic() + within
    while await in_flight(db):
        assert time.monotonic() < deadline, f"rows still in flight\n{up.tail()}"
        await asyncio.sleep(0.2)


async def test_counters_equal_their_rows_after_kill_minus_nine(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(20261130)
    up = UpProcess(tmp_path, db_url, TOML, args=("--log-level", "WARNING"))
    up.write_config()  # the settings are read before its first start
    settings = load_settings(up.config, env={})
    clock = SystemClock()
    db = await open_database(settings)
    await seed(db, settings, clock)
    project = await ensure_project(db, clock, "kill", quotas=QUOTAS)
    clients = Clients(up, await _token(db, project, clock.now()), rng)
    load: asyncio.Task[None] | None = None
    try:
        up.start()
        await up.healthy()
        load = asyncio.create_task(clients.run())
        busy = []  # rows in the middle of a step at each kill
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            busy.append(await in_flight(db))
            up.kill9()
            up.start()
            await up.healthy()
        await asyncio.sleep(rng.uniform(1.0, 2.0))
        clients.stopped = True
        await load
        await _settled(db, up, 30)
        up.stop()

        assert sum(1 for n in busy if n) >= KILLS - 1, f"kills should hit work in flight: {busy}"
        assert clients.cut >= 1, "no request was cut short by a kill"
        assert clients.accepted >= 10 and clients.deleted >= 3, vars(clients)
        async with db.read() as s:
            (found,) = await quota_usage.drifts(s, [project])
            clouds = list(await s.execute(claim_counts.drift_query()))
            live = await s.scalar(
                select(func.count()).select_from(Server).where(Server.deleted.is_(False))
            )
            miscounted = await s.scalar(
                select(func.count())
                .select_from(Claim)
                .where(Claim.counted != claim_counts.now_in_use(datetime.now(UTC)))
            )
            orphans = await s.scalar(
                select(func.count())
                .select_from(Claim)
                .where(
                    Claim.server_id.is_not(None),
                    not_(Claim.server_id.in_(select(Server.id).where(Server.deleted.is_(False)))),
                )
            )
            repaired = dict((await s.execute(select(Cloud.name, Cloud.counters_repaired))).all())
        assert found.counted.instances == live and live > 0
        assert found.repairs == 0, f"housekeeping repaired the project's counters\n{up.tail()}"
        assert found.kept == found.counted
        assert miscounted == 0, "a claim's `counted` flag disagrees with its window"
        assert orphans == 0, "a claim outlived its server"
        assert set(repaired.values()) == {0}, f"housekeeping repaired {repaired}\n{up.tail()}"
        for name, _seen, *values in clouds:
            half = len(values) // 2
            assert values[:half] == values[half:], (name, values)
        # Each live server holds one counted claim (no reservations here).
        assert sum(values[2] for _n, _s, *values in clouds) == live
        # Last, so the counters are checked first: every answer was a success (a 500 is a
        # bug; a deadlock between a create and a delete's counter updates showed as one).
        assert not clients.bad, clients.bad[:5]
    finally:
        clients.stopped = True
        if load is not None and not load.done():
            load.cancel()
        up.stop()
        await db.dispose()
