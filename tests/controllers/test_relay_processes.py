"""The relay of "sync:<cloud>" between two real worker processes on one database.

Worker B (`canopy up`: the API and a worker) places and creates a server; the sync job of
its cloud is held by worker A (`canopy worker`). B, on recording the create, tells the other
workers (`Runtime.tell_others`: NOTIFY on PostgreSQL, a datagram to each worker's socket on
SQLite); A's relay (`Worker._relay`) asks for its own passes over that cloud at the
converging interval, and A's pass shows the server ACTIVE.

Everything else that could show it sooner is out of the way: poll_seconds, sync_seconds
and lease_seconds are 30 s, so no worker's poll or pass at rest comes within the test, A's
placement and provisioning never run (only B's API wakes B's), and B, finding the job held
when its own create asks for a pass, holds off for 30 s. The job is held for A by writing
A's worker id into the job's lease, as A's own pass in progress would: B cannot take it,
A can. The control comes first, on the same processes: B's wake to A is taken out on the
way (A's socket moved aside and a catcher bound in its place; on PostgreSQL, A's database
traffic runs through a proxy that drops the notifications), and that server is not ACTIVE
within the time the relayed one takes. Real processes, loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from canopy.domain.clock import SystemClock
from canopy.store.db import Database
from canopy.store.migrate import upgrade
from canopy.store.models import Job, Server
from canopy.store.wakes import socket_dir
from tests.cli.test_concurrent_start import empty_pg  # noqa: F401 (a fixture)
from tests.cli.test_up import free_port
from tests.cli.test_wake_processes import (  # noqa: F401 (a fixture)
    _start,
    _token,
    _wait_for,
    database_url,
    stop_all,
)

from .notify_proxy import NotifyProxy

pytestmark = pytest.mark.slow

CLOUD = "private"
JOB = f"sync:{CLOUD}"
WAKE = JOB  # what B sends the other workers when it records a create there
QUIET = 30.0  # poll_seconds, sync_seconds, lease_seconds: nothing at rest within the test
WITHIN = 3.0  # from the create's 202 to ACTIVE (0.4 s seen at load 10 on 2 CPUs); else 30 s
DEADLINE = 20.0  # for what the test waits on that is not timed


@dataclass
class Pair:
    """Worker A (`canopy worker`, holding the sync job) and B (`canopy up`) on one database."""

    db_url: str
    api: str  # B's API (and its /metrics)
    a_metrics: str
    a_pid: int
    a_log: Path
    proxy: NotifyProxy | None  # PostgreSQL: A's connections go through it
    wake_dir: Path | None  # SQLite: where the workers' sockets are
    aside: Path  # SQLite: where A's socket waits while its wakes are dropped


def _config(path: Path, data: Path, url: str) -> Path:
    path.write_text(
        f'data_dir = "{data}"\n'
        f'[database]\nurl = "{url}"\n'
        f"[controllers]\npoll_seconds = {QUIET}\nsync_seconds = {QUIET}\n"
        f"lease_seconds = {QUIET}\nsync_converging_seconds = 0.2\n"
        f'[[clouds]]\nname = "{CLOUD}"\ndriver = "sim"\ntier = 0\n'
        "[clouds.sim]\nboot_seconds = 0.2\napi_latency_ms = 5\n"
    )
    return path


async def _job_after(db: Database, runs: int) -> Job | None:
    """The sync job once a pass has recorded itself past `runs` and let the job go (or as
    it is at DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        async with db.read() as s:
            job = await s.get(Job, JOB)
        done = job is not None and job.runs > runs and job.claimed_by is None
        if done or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


def _until(what: str, check: Callable[[], bool], *logs: Path) -> None:
    # Real processes: no fake clock can stand in for them.
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} not within {DEADLINE} s:\n" + "\n".join(p.read_text() for p in logs)
            )
        time.sleep(0.05)


async def _prepared(url: str) -> None:
    """The database migrated, with the cloud's sync job not due for five minutes: neither
    worker makes a pass over the cloud at its start (one finding the other's first pass
    in progress would hold off for 30 s, even from relayed asks)."""
    db = Database(url)
    try:
        await upgrade(db)
        async with db.session() as s:
            s.add(Job(name=JOB, runs=0, next_run_at=SystemClock().now() + timedelta(seconds=300)))
    finally:
        await db.dispose()


def _notify(url: str, payload: str) -> None:
    async def send() -> None:
        db = Database(url)
        try:
            async with db.session() as s:
                await s.execute(text("SELECT pg_notify('canopy_wake', :p)"), {"p": payload})
        finally:
            await db.dispose()

    asyncio.run(send())


@pytest.fixture
def pair(database_url: str, tmp_path: Path) -> Iterator[Pair]:  # noqa: F811
    data = tmp_path / "data"
    proxy: NotifyProxy | None = None
    a_url = database_url
    wake_dir = None
    if database_url.startswith("postgresql"):
        url = make_url(database_url)
        proxy = NotifyProxy(url.host or "127.0.0.1", url.port or 5432)
        a_url = url.set(port=proxy.start()).render_as_string(hide_password=False)
    else:
        wake_dir = socket_dir(Path(make_url(database_url).database or ""))
    api_port, metrics_port = free_port(), free_port()
    b_log, a_log = tmp_path / "b.log", tmp_path / "a.log"
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        data.mkdir(mode=0o700)
        asyncio.run(_prepared(database_url))
        # Both at once (each takes seconds to start on a busy machine); the schema is there.
        b_config = _config(tmp_path / "b.toml", data, database_url)
        procs.append((_start("up", b_config, b_log, CANOPY_API_PORT=str(api_port)), b_log))
        a_config = _config(tmp_path / "a.toml", data, a_url)
        a = _start("worker", a_config, a_log, CANOPY_WORKER__METRICS_PORT=str(metrics_port))
        procs.append((a, a_log))
        a_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        _wait_for(f"http://127.0.0.1:{api_port}/healthz", *procs[0])
        _wait_for(a_metrics, a, a_log)
        pair = Pair(
            database_url,
            f"http://127.0.0.1:{api_port}",
            a_metrics,
            a.pid,
            a_log,
            proxy,
            wake_dir,
            tmp_path / "a.sock",
        )
        if proxy is not None:  # A listens (through the proxy) once a notification reaches it
            passed = proxy.passed

            def heard() -> bool:
                _notify(database_url, "probe")  # a loop name no worker has: wakes nothing
                return "probe" in passed

            _until("A listening", heard, a_log)
        else:
            _until("A's wake socket", lambda: _socket_of_a(pair) is not None, a_log)
        yield pair
    finally:
        stop_all(procs)
        if proxy is not None:
            proxy.close()


def _socket_of_a(pair: Pair) -> Path | None:
    assert pair.wake_dir is not None
    with contextlib.suppress(FileNotFoundError):
        for p in pair.wake_dir.iterdir():
            if p.name.startswith(f"{pair.a_pid}-") and p.name.endswith(".sock"):
                return p
    return None


@contextlib.contextmanager
def _wakes_to_a_dropped(pair: Pair) -> Iterator[Callable[[], list[str]]]:
    """While inside: what the other processes send worker A is taken out on the way (and
    kept, for the test to see it was sent). Yields: the payloads taken so far."""
    if pair.proxy is not None:
        proxy = pair.proxy
        proxy.dropping = True
        try:
            yield lambda: list(proxy.dropped)
        finally:
            proxy.dropping = False
        return
    assert pair.wake_dir is not None
    mine = _socket_of_a(pair)
    assert mine is not None
    os.rename(mine, pair.aside)  # out of the directory senders scan; still A's, bound
    catcher = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    catcher.setblocking(False)
    caught_path = pair.wake_dir / "catcher.sock"
    catcher.bind(str(caught_path))
    caught: list[str] = []

    def take() -> list[str]:
        with contextlib.suppress(BlockingIOError):
            while True:
                caught.append(catcher.recv(4096).decode())
        return list(caught)

    try:
        yield take
    finally:
        catcher.close()
        caught_path.unlink()
        os.rename(pair.aside, mine)  # the same socket, at the same path: A never noticed


async def _hold_for(db: Database, worker: str) -> int:
    """Write `worker` into the sync job's lease, for two minutes (as its pass in progress
    would hold it): no other worker takes the job, `worker` itself may. Returns the
    job's runs so far."""
    until = SystemClock().now() + timedelta(seconds=120)
    async with db.session() as s:
        await s.execute(
            update(Job).where(Job.name == JOB).values(claimed_by=worker, claim_expires_at=until)
        )
        job = await s.get(Job, JOB)
        assert job is not None
        return job.runs


async def _create(client: httpx.AsyncClient, name: str) -> tuple[str, float]:
    body = {"server": {"name": name, "imageRef": "cirros", "flavorRef": "1"}}
    r = await client.post("/compute/v2.1/servers", json=body)
    assert r.status_code == 202, r.text
    return r.json()["server"]["id"], time.monotonic()


async def _status(db: Database, sid: str) -> str:
    async with db.read() as s:
        status: str = (await s.execute(select(Server.status).where(Server.id == sid))).scalar_one()
        return status


async def _active_by(db: Database, sid: str, deadline: float) -> bool:
    """Whether server `sid` is ACTIVE (as canopy's row says) before `deadline` (monotonic)."""
    while time.monotonic() < deadline:
        if await _status(db, sid) == "ACTIVE":
            return True
        await asyncio.sleep(0.05)
    return await _status(db, sid) == "ACTIVE"


async def _lists(client: httpx.AsyncClient, url: str) -> float:
    """The `list` calls to the cloud a process has made: its sync passes."""
    r = await client.get(url)
    assert r.status_code == 200, r.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
        if sample.name == "canopy_cloud_calls_total"
        and sample.labels.get("cloud") == CLOUD
        and sample.labels.get("operation") == "list"
    )


async def _caught(take: Callable[[], list[str]]) -> list[str]:
    """The payloads taken out, once B's wake is among them (or after DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        got = take()
        if any(WAKE in p.split(",") for p in got) or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)


async def test_a_create_recorded_by_one_worker_wakes_the_sync_of_the_worker_holding_it(
    pair: Pair,
) -> None:
    a_id = re.search(r"worker id\s+(\S+)", pair.a_log.read_text())
    assert a_id is not None, pair.a_log.read_text()
    db = Database(pair.db_url)
    try:
        runs = await _hold_for(db, a_id.group(1))
        async with httpx.AsyncClient(base_url=pair.api, timeout=30.0) as client:
            with httpx.Client(base_url=pair.api, timeout=30.0) as sync_client:
                client.headers["X-Auth-Token"] = _token(sync_client)
            a_lists = await _lists(client, pair.a_metrics)
            b_lists = await _lists(client, "/metrics")

            # The control: B's wake does not reach A, and nothing else shows the server
            # ACTIVE soon (B tries the job once, finds it A's and holds off).
            with _wakes_to_a_dropped(pair) as taken:
                dropped, created = await _create(client, "dropped")
                assert not await _active_by(db, dropped, created + WITHIN)
                assert any(WAKE in p.split(",") for p in await _caught(taken)), taken()
            assert await _lists(client, pair.a_metrics) == a_lists  # A made no pass

            # Relayed: A's pass shows it ACTIVE within seconds (the other one with it).
            relayed, created = await _create(client, "relayed")
            assert await _active_by(db, relayed, created + WITHIN)
            assert await _status(db, dropped) == "ACTIVE"
            assert await _lists(client, pair.a_metrics) > a_lists
            assert await _lists(client, "/metrics") == b_lists  # every pass was A's
        if pair.proxy is not None:
            assert WAKE in pair.proxy.passed
        # A slice commits (and shows the server ACTIVE) before its pass records itself and
        # lets the job go: wait for the pass's end, not only for what it saw.
        job = await _job_after(db, runs)
        assert job is not None and job.runs > runs, (job and job.runs, runs)
        assert job.claimed_by is None  # A's pass released what it was holding
    finally:
        await db.dispose()
