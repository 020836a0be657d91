"""Idempotent create across a real kill -9, on the real clouds.

The behaviour suite shows it in one process (test_behaviour.py); tests/controllers/
test_crash.py kills real workers over the sim. Here real `canopy worker` processes run
over EC2 on moto's server and over a genuine Nova, and are killed with SIGKILL while N
servers are created and half of them deleted: at random moments, once on purpose right
after the cloud answered a create and before canopy wrote it down (killpoint.py: the
worker kills itself there), and on Nova once more from outside, the moment Nova's
request log shows a create answered. Afterwards every server is ACTIVE or gone as asked,
and the cloud's own record (moto keeps terminated instances; Nova lists deleted servers
by changes-since and counts the creates it answered) shows each server made exactly once.
A last test kills a new install's first worker in the middle of its first inventory (on
EC2): the next worker must read the cloud once the dead worker's lease runs out.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.services.servers import CreateServer, ServerService
from canopy.store.db import Database
from canopy.store.models import Cloud as CloudRow
from canopy.store.models import Placement, Server
from tests.controllers.procs import WorkerProcess, in_flight, installed
from tests.interop.nova.harness import RealNova
from tests.providers.behaviour import killpoint
from tests.providers.behaviour.backends import Ec2Backend, NovaBackend
from tests.providers.conftest import nova_or_skip

pytestmark = pytest.mark.slow

WAVE = 10  # servers asked for at once: two waves, three on Nova
CREATE = "POST /v2.1/servers"  # Nova's create, as its harness counts requests
LONG_LEASE = 20.0  # seconds: a dead worker's lease that outlasts the next one's start

GONE = {"DELETED", "shutting-down", "terminated"}  # Nova's and EC2's words

CONTROLLERS = """
[controllers]
lease_seconds = 2.0
poll_seconds = 0.05
sync_seconds = 0.3
full_sync_every = 3
backoff_base_seconds = 0.1
backoff_max_seconds = 1.0
"""

Cloud = Ec2Backend | NovaBackend


@pytest.fixture(scope="module")
def roomy_nova(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNova]:
    """A Nova of its own whose host holds every server here (FakeDriver: 1,000 vcpus;
    the shared one's holds 8) and whose quotas do not stop them."""
    nova = nova_or_skip(tmp_path_factory.mktemp("nova"), compute_driver="fake.FakeDriver")
    try:
        nova.raise_quotas()
        yield nova
    finally:
        nova.stop()


@pytest.fixture(params=["ec2", "openstack"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Cloud:
    if request.param == "ec2":
        return Ec2Backend(request.getfixturevalue("moto"), request.getfixturevalue("ami"))
    return NovaBackend(request.getfixturevalue("roomy_nova"), tmp_path)


async def _rows(db: Database) -> dict[str, Server]:
    async with db.read() as s:
        return {r.id: r for r in (await s.execute(select(Server))).scalars()}


async def _unrecorded(db: Database, cloud: Cloud) -> set[str]:
    """Servers the cloud has made that canopy has not written down (no remote id yet)."""
    rows = await _rows(db)
    return {
        r.canopy_id
        for r in await cloud.every()
        if r.canopy_id in rows and rows[r.canopy_id].remote_id is None
    }


class Killer:
    """The worker under test, and the kills it took."""

    def __init__(self, db: Database, cloud: Cloud, cfg: Path, tmp_path: Path) -> None:
        self.db, self.cloud, self.log = db, cloud, tmp_path / "worker.log"
        self.armed = tmp_path / "kill-after-create"
        self.worker = WorkerProcess(
            cfg,
            self.log,
            command=[sys.executable, killpoint.HERE],
            env={killpoint.ARMED: str(self.armed)},
        )
        self.kills: list[str] = []  # what each kill hit
        self.busy = 0  # random kills that hit a worker with rows in flight

    def answered(self) -> list[str]:
        """What the kill point wrote: the canopy id and the remote id of the create."""
        return _answered(self.armed).split()

    def tail(self) -> str:
        return self.log.read_text()[-3000:]

    async def where(self) -> str:
        """What the rows and the cloud hold, and where the worker is (its stacks, which
        killpoint.py prints on SIGUSR1): what a failure needs to be understood."""
        before = len(self.log.read_text(errors="replace"))
        self.worker.send(signal.SIGUSR1)
        await asyncio.sleep(1.0)  # the worker writes its stacks to its log
        log = self.log.read_text(errors="replace")
        rows = sorted((await _rows(self.db)).values(), key=lambda r: r.name)
        made = Counter(r.canopy_id for r in await self.cloud.every())
        lines = [
            f"{r.name} {r.id} phase={r.phase} status={r.status} cloud={r.cloud} "
            f"remote={r.remote_id} attempts={r.attempts} retries={r.retries} "
            f"next={r.next_attempt_at} by={r.claimed_by} until={r.claim_expires_at} "
            f"fault={r.fault_message!r} made={made[r.id]}"
            for r in rows
        ]
        async with self.db.read() as s:
            placed = select(Placement.server_id, Placement.reason).order_by(Placement.id)
            reasons = dict((await s.execute(placed)).tuples().all())
            clouds = [
                f"cloud {c.name} enabled={c.enabled} healthy={c.healthy} "
                f"health={c.health_message!r} failures={c.consecutive_failures} "
                f"blocklisted={c.blocklisted_until} {c.blocklist_reason!r} "
                f"capacity_at={c.capacity_updated_at} claimed={c.instances_claimed} "
                f"generation={c.generation}"
                for c in (await s.execute(select(CloudRow))).scalars()
            ]
        lines += [f"{r.name}: last placement {reasons.get(r.id)!r}" for r in rows]
        return "\n".join(
            [*lines, *clouds, log[:before][-8000:], "--- the worker's stacks", log[before:]]
        )

    async def at_random(self, rng: random.Random, low: float, high: float) -> None:
        """Kill -9 between `low` and `high` seconds from now, and start a new worker."""
        await asyncio.sleep(rng.uniform(low, high))
        assert self.worker.alive(), self.tail()
        busy = await in_flight(self.db)
        self.worker.kill9()
        self.kills.append(f"random, {busy} rows in flight")
        self.busy += busy > 0
        self.worker.start()

    async def after_an_answered_create(self, create: Awaitable[object]) -> None:
        """Arm the kill point; the worker kills itself after the next create answered."""
        self.armed.write_text("")
        await create
        deadline = time.monotonic() + 60
        while self.worker.alive():
            if time.monotonic() > deadline:
                raise AssertionError(f"the kill point was never reached\n{await self.where()}")
            await asyncio.sleep(0.05)
        canopy_id, remote_id = self.answered()
        # Provisioning never recorded the answer: the row is still its create's. (Sync may
        # have adopted the remote id meanwhile: a Nova create waits for the scheduler.)
        row = (await _rows(self.db))[canopy_id]
        assert row.phase == "create", (row.phase, row.status)
        made = {r.remote_id for r in await self.cloud.every() if r.canopy_id == canopy_id}
        assert made == {remote_id}, "the cloud made the server before the kill"
        seen = "unrecorded" if row.remote_id is None else "adopted by sync, not recorded"
        self.kills.append(f"after {canopy_id} was answered ({seen})")
        self.worker.start()

    async def when_nova_answers_a_create(
        self, nova: RealNova, create: asyncio.Task[object]
    ) -> None:
        """Kill from outside the moment Nova's request log counts one more create."""
        before = nova.served().get(CREATE, (0, 0.0))[0]
        deadline = time.monotonic() + 60
        while nova.served().get(CREATE, (0, 0.0))[0] == before:
            assert time.monotonic() < deadline, f"no create reached Nova\n{self.tail()}"
            await asyncio.sleep(0.01)
        self.worker.kill9()
        await create
        unrecorded = await _unrecorded(self.db, self.cloud)
        self.kills.append(f"when Nova answered a create: unrecorded {sorted(unrecorded)}")
        self.worker.start()


async def test_kill_minus_nine_while_creating_and_deleting_makes_each_server_once(
    cloud: Cloud, db_url: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    rng = random.Random(20261130)
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n' + CONTROLLERS + cloud.toml()
    )
    settings, clock, db, ctx = await installed(cfg, "kill")
    svc = ServerService(db, settings, clock)
    nova = cloud.nova if isinstance(cloud, NovaBackend) else None
    creates_before = nova.statuses(CREATE) if nova else {}

    async def wave(n: int) -> object:
        spec = CreateServer(
            name=f"kill{n}", flavor="m1.small", image="cirros", min_count=WAVE, max_count=WAVE
        )
        return await svc.create(ctx, spec)

    k = Killer(db, cloud, cfg, tmp_path)
    try:
        k.worker.start()
        await wave(0)
        # A worker takes about a second to start; kill it while it is doing work.
        await k.at_random(rng, 1.2, 2.5)
        await k.after_an_answered_create(wave(1))
        if nova is not None:
            await k.when_nova_answers_a_create(nova, asyncio.create_task(wave(2)))
        await k.at_random(rng, 1.2, 2.5)
        ids = list(await _rows(db))
        await _until(db, lambda st: st == Counter({"ACTIVE": len(ids)}), k.worker, "creates")
        built = time.monotonic() - t0

        # Deletes in two waves, each cut short by a kill while it is being asked for.
        doomed = set(rng.sample(ids, len(ids) // 2))

        async def delete(sids: list[str]) -> None:
            for sid in sids:
                await svc.delete(ctx, sid)

        for half in (sorted(doomed)[::2], sorted(doomed)[1::2]):
            deleting = asyncio.create_task(delete(half))
            await k.at_random(rng, 0.05, 0.2)
            await deleting
        want = Counter({"DELETED": len(doomed), "ACTIVE": len(ids) - len(doomed)})
        await _until(db, lambda st: st == want, k.worker, "deletes")
    finally:
        k.worker.stop()

    rows = await _rows(db)
    kept = {sid for sid in ids if sid not in doomed}
    # The cloud's own record: every server it ever made for canopy, deleted ones included.
    ever = await cloud.every()
    made = Counter(r.canopy_id for r in ever)
    twice = {cid: n for cid, n in made.items() if n > 1}
    assert not twice, f"servers made more than once: {twice}; kills: {k.kills}"
    assert set(made) == set(ids), "a server the cloud made has no canopy row, or one none"
    live = {r.canopy_id: r.remote_id for r in ever if r.state not in GONE}
    assert live == {sid: rows[sid].remote_id for sid in kept}
    answered: Counter[str] = Counter()
    if nova is not None:
        # Nova accepted one create per server. A kill may also cut a create on its way:
        # Nova then reads half a request and its fault wrapper answers 500 to no one (or
        # the client is gone before any answer: "none"). Nothing else is allowed, and no
        # more of them than there were kills: a create Nova refused (400, 403, 409) would
        # be canopy asking wrongly after a kill.
        answered = Counter(nova.statuses(CREATE)) - Counter(creates_before)
        others = {status: n for status, n in answered.items() if status != "202"}
        report = f"its answers to creates: {dict(answered)}; kills: {k.kills}"
        assert answered["202"] == len(ids), (
            f"Nova accepted {answered['202']} creates for {len(ids)} servers; {report}"
        )
        assert set(others) <= {"500", "none"}, report
        assert sum(others.values()) <= len(k.kills), report
    assert len(k.kills) >= 5 + (nova is not None), k.kills
    # The kills at the answered create (and Nova's) land mid-work by construction; of the
    # random ones, those cut into the delete waves always find rows in flight, while those
    # during the creates may come after a fast cloud (moto) has made every server.
    assert k.busy >= 2, f"kills should hit a worker with work in flight: {k.kills}"
    print(
        f"\n{cloud.name}: {len(ids)} servers, {len(k.kills)} kills ({'; '.join(k.kills)}); "
        f"built in {built:.1f} s, all in {time.monotonic() - t0:.1f} s"
        + (f"; Nova's answers to creates: {dict(answered)}" if nova is not None else "")
    )
    await db.dispose()


def _answered(armed: Path) -> str:
    """What the kill point armed by the file `armed` wrote as its process died."""
    return Path(f"{armed}.answered").read_text()


async def _until(
    db: Database,
    done: Callable[[Counter[str]], bool],
    worker: WorkerProcess,
    what: str,
    within: float = 90.0,
) -> None:
    """Until the rows' statuses are `done`, within `within` seconds; `worker` must live."""
    deadline = time.monotonic() + within
    while True:
        statuses = Counter(r.status for r in (await _rows(db)).values())
        if done(statuses):
            return
        assert time.monotonic() < deadline, f"{what}: no convergence: {statuses}\n{worker.tail()}"
        assert worker.alive(), worker.tail()
        await asyncio.sleep(0.3)


async def test_a_worker_killed_in_its_first_inventory_leaves_the_cloud_to_the_next(
    moto: str, ami: str, db_url: str, tmp_path: Path
) -> None:
    """The first worker of a new install dies after EC2 answered its inventory's offerings
    and before it wrote them down: the cloud was never read, so nothing is placeable on it,
    and the dead worker's lease holds the inventory job. The next worker reads the cloud
    when that lease runs out (LONG_LEASE here) and builds the servers; it used to wait out its
    inventory loop's idle minute first."""
    cloud = Ec2Backend(moto, ami)
    cfg = tmp_path / "canopy.toml"
    # A lease that outlasts the next worker's start (a second or two), so that it finds
    # the job still held by the dead one.
    controllers = CONTROLLERS.replace("lease_seconds = 2.0", f"lease_seconds = {LONG_LEASE}")
    assert controllers != CONTROLLERS
    cfg.write_text(
        f'data_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n' + controllers + cloud.toml()
    )
    settings, clock, db, ctx = await installed(cfg, "kill")
    armed = tmp_path / "kill-after-offerings"
    armed.write_text("")
    first = WorkerProcess(
        cfg,
        tmp_path / "first.log",
        command=[sys.executable, killpoint.HERE],
        env={killpoint.ARMED: str(armed), killpoint.AT: "offerings"},
    )
    nxt = WorkerProcess(cfg, tmp_path / "next.log", command=[sys.executable, killpoint.HERE])
    try:
        first.start()
        deadline = time.monotonic() + 60
        while first.alive():
            assert time.monotonic() < deadline, f"the kill point was never reached\n{first.tail()}"
            await asyncio.sleep(0.05)
        died = time.monotonic()
        assert _answered(armed).startswith("offerings")
        async with db.read() as s:
            row = await s.get(CloudRow, "c1")
            assert row is not None and row.capacity_updated_at is None, "read before the kill"

        nxt.start()
        started = time.monotonic()
        assert started - died < LONG_LEASE / 2, "too late to find the dead worker's lease"
        spec = CreateServer(
            name="after", flavor="m1.small", image="cirros", min_count=3, max_count=3
        )
        await ServerService(db, settings, clock).create(ctx, spec)
        # Inside the idle minute the next worker's inventory used to wait after its first
        # look (a lease of LONG_LEASE, renewed every third of it, still held then).
        within = 50 - (time.monotonic() - started)
        await _until(db, lambda st: st == Counter({"ACTIVE": 3}), nxt, "creates", within)
    finally:
        first.stop()
        nxt.stop()
        await db.dispose()
