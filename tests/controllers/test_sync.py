"""Sync passes: unchanged servers cost no lock and no write; a pass that is not due costs
no statement at all; a pass whose lease is lost records nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from canopy.controllers.listing import COMPARED, LIVE, quiet
from canopy.controllers.observe import apply_observation
from canopy.domain.specs import RemoteServer
from canopy.domain.states import DesiredState, Phase, RemoteState, ServerStatus
from canopy.providers.base import ListPage
from canopy.store.leases import lease_job
from canopy.store.models import Job

from .harness import PRIVATE, make_plane, statements

CLOUDS = PRIVATE

T0 = datetime(2026, 1, 1, tzinfo=UTC)


remotes = st.builds(
    RemoteServer,
    remote_id=st.sampled_from(["r1", "r2"]),
    canopy_id=st.just("s1"),
    name=st.just("vm"),
    state=st.sampled_from(list(RemoteState)),
    addresses=st.sampled_from([{}, {"private": ["10.0.0.5"]}, {"private": ["10.0.0.6"]}]),
    fault=st.sampled_from([None, "boot failed"]),
    host=st.sampled_from(["h1", None, "h2"]),
)


# The phases and statuses where `quiet` has work to do come first: Hypothesis draws the
# early members of a list more often.
PHASES = [Phase.STEADY, Phase.CONVERGE, Phase.CREATE, Phase.POWER, *Phase]
STATUSES = [ServerStatus.ACTIVE, ServerStatus.SHUTOFF, ServerStatus.BUILD, *ServerStatus]


@st.composite
def listed(draw: st.DrawFn) -> tuple[dict[str, Any], RemoteServer]:
    """A listed server and its row, mostly alike (the case `quiet` has to get right)."""
    remote = draw(remotes)

    def mostly(same: Any, others: list[Any]) -> Any:
        return draw(st.sampled_from([same, same, same, *others]))

    def one(of: list[Any]) -> Any:
        return draw(st.sampled_from(of))

    row = {
        "id": "s1",
        "cloud": mostly("private", ["public"]),
        "remote_id": mostly(remote.remote_id, ["r1", "r2", None]),
        "deleted": mostly(False, [True]),
        "phase": str(one(PHASES)),
        "status": str(one(STATUSES)),
        "task_state": one([None, "spawning", "rebooting"]),
        "desired_state": str(one([DesiredState.ACTIVE, *DesiredState])),
        "observed_state": mostly(str(remote.state), [None, *map(str, RemoteState)]),
        "action_at": one([None, T0 - timedelta(seconds=5), T0 + timedelta(seconds=5)]),
        "reboot_requested": one([0, 1, 2]),
        "reboot_done": one([0, 1, 2]),
        "launched_at": one([None, T0 - timedelta(hours=1)]),
        "addresses": one([{}, {"private": [{"addr": "10.0.0.5", "version": 4}]}]),
        "host": mostly(remote.host, ["h1", "h2", None]),
    }
    return row, remote


class _Row(SimpleNamespace):
    def _asdict(self) -> dict[str, Any]:
        return dict(vars(self))


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(case=listed())
def test_aquiet_server_is_one_whose_observation_changes_nothing(
    case: tuple[dict[str, Any], RemoteServer],
) -> None:
    """`quiet` may skip a listed server only if reconciling it would change no column.

    The oracle is what a pass does to a row it locks: leaks, adoption and deletion are
    handled there (never quiet), and the observation is applied in the live phases.
    """
    row, remote = case
    light = _Row(**row)
    if not quiet(light, remote, "private", T0):
        return
    assert remote.state != RemoteState.DELETED and not row["deleted"]
    assert row["cloud"] == "private" and row["remote_id"] == remote.remote_id
    copy = SimpleNamespace(**row)
    if remote.host is not None:
        copy.host = remote.host  # a pass records the host the cloud reports
    if row["phase"] in (*LIVE, Phase.CREATE):
        apply_observation(copy, remote.state, T0, fault=remote.fault, addresses=remote.addresses)
    assert {k: getattr(copy, k) for k in COMPARED} == row


def test_the_common_unchanged_servers_arequiet() -> None:
    """What most of a pass lists: still booting, or running as recorded."""
    addresses = {"private": [{"addr": "10.0.0.5", "version": 4}]}
    base = {
        "id": "s1",
        "cloud": "private",
        "remote_id": "r1",
        "deleted": False,
        "task_state": None,
        "desired_state": DesiredState.ACTIVE,
        "action_at": T0 - timedelta(seconds=5),
        "reboot_requested": 0,
        "reboot_done": 0,
        "launched_at": None,
        "addresses": addresses,
        "host": None,
    }
    booting = _Row(
        **base, phase=Phase.CONVERGE, status=ServerStatus.BUILD, observed_state="pending"
    )
    running = _Row(**base, phase=Phase.STEADY, status=ServerStatus.ACTIVE, observed_state="running")
    listed = RemoteServer("r1", "s1", "vm", RemoteState.PENDING, {"private": ["10.0.0.5"]})
    assert quiet(booting, listed, "private", T0)
    up = RemoteServer("r1", "s1", "vm", RemoteState.RUNNING, {"private": ["10.0.0.5"]})
    assert quiet(running, up, "private", T0)
    # ... and what is not: the boot finished, or the server moved.
    assert not quiet(booting, up, "private", T0)
    moved = RemoteServer("r1", "s1", "vm", RemoteState.RUNNING, {"private": ["10.0.0.9"]})
    assert not quiet(running, moved, "private", T0)
    # A host reported that the row does not have yet (or another one) is written.
    ip = {"private": ["10.0.0.5"]}
    on_h1 = RemoteServer("r1", "s1", "vm", RemoteState.RUNNING, ip, host="h1")
    assert not quiet(running, on_h1, "private", T0)
    assert quiet(_Row(**{**vars(running), "host": "h1"}), on_h1, "private", T0)


class _Listed:
    """A listing already made: its one page is given to `_reconcile`, no more follow."""

    count = 1

    async def next(self) -> None:
        return None


async def test_a_pass_over_unchanged_servers_writes_no_server_row(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        await p.create(3)

        async def active() -> bool:
            return await p.count(status="ACTIVE") == 3

        await p.run_until(active)
        remote = await p.sim("private").list(None)
        assert len(remote) == 3
        async with p.db.session() as s:  # the pass's lease on its job, as sync_cloud takes it
            assert await lease_job(
                s, name="sync:private", worker=p.rt.worker_id, now=p.clock.now(), lease_seconds=30
            )
        with statements(p.db) as seen:
            await p.worker.sync._reconcile(
                "private", "sync:private", _Listed(), remote, p.clock.now(), True
            )
        locks = [s for s in seen if "FOR UPDATE" in s and "FROM servers" in s]
        assert [s for s in seen if s.startswith("UPDATE servers")] + locks == []
        assert any(s.startswith("SELECT servers.id, servers.cloud") for s in seen)
        assert await p.count(status="ACTIVE") == 3
    finally:
        await p.close()


async def test_a_sync_that_is_not_due_runs_no_statement(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        assert await p.worker.sync.sync_cloud("private")  # first pass: due at once
        with statements(p.db) as seen:
            for _ in range(20):
                assert not await p.worker.sync.sync_cloud("private")
        assert seen == []
        p.clock.advance(p.settings.controllers.sync_seconds)
        assert await p.worker.sync.sync_cloud("private")  # due again after the interval
    finally:
        await p.close()


async def test_a_job_held_by_another_worker_is_left_to_it(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        async with p.db.session() as s:
            job = await lease_job(
                s, name="sync:private", worker="other", now=p.clock.now(), lease_seconds=30
            )
            assert job is not None
        assert not await p.worker.sync.sync_cloud("private")
        with statements(p.db) as seen:
            assert not await p.worker.sync.sync_cloud("private")
        assert seen == []  # remembered until it is worth asking again
        p.clock.advance(31)  # the other worker's lease has expired: take over
        assert await p.worker.sync.sync_cloud("private")
    finally:
        await p.close()


async def test_a_pass_whose_job_lease_is_lost_stops_and_records_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """Sync's calls are fenced on its job's lease like any step's."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    sim = p.sim("private")
    listing, release = asyncio.Event(), asyncio.Event()
    real_list = sim.list_page

    async def held_list(since: datetime | None, marker: str | None, n: int) -> ListPage:
        listing.set()
        await release.wait()
        return await real_list(since, marker, n)

    sim.list_page = held_list  # type: ignore[method-assign]
    try:
        task = asyncio.create_task(p.worker.sync.sync_cloud("private"))
        await asyncio.wait_for(listing.wait(), 10)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)  # this worker stalled
        async with p.db.session() as s:
            assert await lease_job(
                s, name="sync:private", worker="other", now=p.clock.now(), lease_seconds=30
            )
        assert await p.rt.heartbeat() == 1  # finds the job taken: the list is cancelled
        assert await asyncio.wait_for(task, 10)  # the pass ran, and was abandoned
        async with p.db.read() as s:
            job = await s.get(Job, "sync:private")
            assert job is not None and job.claimed_by == "other"
            assert job.runs == 0 and job.last_run_at is None  # nothing recorded
    finally:
        release.set()
        await p.close()


AT_REST = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
boot_seconds = 1
api_latency_ms = 0
"""


async def test_a_boot_on_a_cloud_at_rest_is_seen_at_the_converging_interval(
    db_url: str, tmp_path: Path
) -> None:
    # At rest the cloud is synced every 10 s; a create recorded there brings its next pass
    # to the converging interval, so the finished boot shows ACTIVE within about 0.5 s.
    p = await make_plane(
        db_url,
        tmp_path,
        toml=AT_REST,
        overrides={"controllers": {"sync_seconds": 10.0, "sync_converging_seconds": 0.5}},
    )
    try:
        await p.worker.sync.run_once(force=True)  # nothing converging: next pass in 10 s
        assert p.worker.sync.next_due_in(p.clock.now()) == 10.0
        [sid] = await p.create(1)
        t0 = p.clock.now()
        for _ in range(100):
            if (await p.service.get(p.ctx, sid)).status == "ACTIVE":
                break
            await p.step(0.1)
        took = (p.clock.now() - t0).total_seconds()
        assert (await p.service.get(p.ctx, sid)).status == "ACTIVE"
        assert took <= 1.0 + 0.5 + 0.3, took  # the boot, one converging interval, steps
    finally:
        await p.close()
