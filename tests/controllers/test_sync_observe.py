"""Sync's write of a slice of listed servers (controllers/sync_observe.py, sync_rows.py):
the rows, instance action events, notifications and boot times the ORM path it replaced
left, exactly, and a few statements a slice whatever the number of changed rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from canopy.controllers import sync as sync_module
from canopy.controllers.boot_times import BootTimes
from canopy.controllers.listing import LIVE
from canopy.controllers.observe import apply_observation
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync_gone import lock_rows, servers_gone
from canopy.controllers.sync_observe import observe
from canopy.domain.specs import RemoteServer
from canopy.domain.states import DesiredState, Phase, PowerAction, RemoteState
from canopy.notifications.outbox import server_observed
from canopy.store.events import add_event
from canopy.store.leases import live
from canopy.store.models import Claim, Cloud, InstanceActionEvent, OutboxEvent, Server

from .harness import Plane, make_plane, statements
from .test_sync_gone import CLOUDS


async def orm_observe(
    rt: Runtime,
    s: Any,
    cloud: str,
    part: Sequence[RemoteServer],
    adopting: set[str],
    started: datetime,
    last_pass: datetime | None,
) -> tuple[list[str], bool]:
    """The ORM path `observe` replaced, as it was (the reference the results must match)."""
    now = rt.clock.now()
    ids = [r.canopy_id for r in part if r.canopy_id]
    wanted = [i for i in ids if i in adopting]
    leased: set[str] = set()
    if wanted:
        leased.update(
            await s.scalars(
                select(Server.id).where(Server.id.in_(wanted), live(Server, rt.lease_now()))
            )
        )
    rows = {r.id: r for r in await lock_rows(s, Server.id.in_(ids))} if ids else {}
    leaks: list[str] = []
    gone: list[Server] = []
    rescheduled = False
    for r in part:
        row = rows.get(r.canopy_id) if r.canopy_id else None
        if row is None:
            continue
        if r.state == RemoteState.DELETED:
            if row.cloud == cloud and row.remote_id == r.remote_id:
                gone.append(row)
            continue
        if row.deleted or row.cloud != cloud:
            leaks.append(r.remote_id)
            continue
        if row.remote_id is None:
            row.remote_id = r.remote_id
            row.remote_recorded_at = now
            row.zone = r.zone or row.zone
            if row.phase == Phase.CREATE and row.id not in leased:
                row.phase = Phase.CONVERGE
            await add_event(
                s,
                server_id=row.id,
                action="create",
                event="adopt",
                result="Success",
                details=f"adopted {r.remote_id} found on {cloud} by its canopy id",
                host=cloud,
                now=now,
            )
        elif row.remote_id != r.remote_id:
            leaks.append(r.remote_id)
            continue
        if r.host is not None and row.host != r.host:
            row.host = r.host
        if row.phase in LIVE or row.phase == Phase.CREATE:
            changed = apply_observation(row, r.state, started, fault=r.fault, addresses=r.addresses)
            if changed == "active":
                rt.boots.saw_boot(cloud, row, r, started, last_pass)
            server_observed(s, row, changed, now)
            if changed:
                row.updated_at = now
            rescheduled |= row.phase == Phase.RESCHEDULE
    await servers_gone(s, gone, started, now)
    return leaks, rescheduled


class Undo(Exception):
    """Ends a session's block, so that it rolls back."""


async def _world(p: Plane) -> tuple[list[str], dict[str, str]]:
    """Nine servers ACTIVE on `private`, recorded by a pass; then three rows moved as a
    create in flight would leave them: one booting, one never recorded (to adopt), one
    stopped."""
    ids = await p.create(9)

    async def ready() -> bool:
        return await p.count(status="ACTIVE") >= 9

    await p.run_until(ready)
    assert await p.worker.sync.sync_cloud("private", force=True)
    now = p.clock.now()
    async with p.db.session() as s:
        remote = {sid: rid for sid, rid in await s.execute(select(Server.id, Server.remote_id))}
        await s.execute(
            update(Server)
            .where(Server.id == ids[4])
            .values(status="BUILD", phase=Phase.CONVERGE, launched_at=None, observed_state=None)
        )
        await s.execute(
            update(Server)
            .where(Server.id == ids[5])
            .values(status="BUILD", phase=Phase.CREATE, remote_id=None, launched_at=None)
        )
        await s.execute(
            update(Server)
            .where(Server.id == ids[7])
            .values(
                status="SHUTOFF",
                desired_state=DesiredState.STOPPED,
                observed_state=RemoteState.STOPPED,
            )
        )
        await s.execute(
            update(Server).where(Server.id.in_(ids)).values(remote_recorded_at=now - timedelta(60))
        )
    return ids, {k: v for k, v in remote.items() if v is not None}


def _listing(ids: list[str], remote: dict[str, str], at: datetime) -> list[RemoteServer]:
    """One slice: each kind of change a listed server makes to its row."""

    def srv(i: int, state: RemoteState, **kw: Any) -> RemoteServer:
        return RemoteServer(
            remote_id=remote[ids[i]], canopy_id=ids[i], name="vm", state=state, **kw
        )

    return [
        srv(0, RemoteState.STOPPED),  # stopped outside canopy
        srv(1, RemoteState.STOPPED, host="elsewhere"),  # and moved
        srv(2, RemoteState.ERROR, fault="the hypervisor broke"),  # broken
        srv(3, RemoteState.RUNNING, addresses={"private": ["10.9.9.9"]}),  # new address
        srv(4, RemoteState.RUNNING, created_at=at - timedelta(seconds=40), updated_at=at),
        srv(5, RemoteState.RUNNING, zone="z1"),  # adopted, then booted
        srv(6, RemoteState.DELETED),  # deleted outside canopy
        srv(7, RemoteState.RUNNING),  # started outside canopy
        srv(8, RemoteState.RUNNING),  # unchanged
        RemoteServer(remote_id="copy", canopy_id=ids[0], name="vm", state=RemoteState.RUNNING),
        RemoteServer(remote_id="stray", canopy_id="nobody", name="vm", state=RemoteState.RUNNING),
    ]


async def _effects(p: Plane, fn: Any, part: list[RemoteServer], adopting: set[str]) -> Any:
    """What `fn` writes for `part` (read back in its transaction, then rolled back)."""
    p.rt.boots = BootTimes()
    started = p.clock.now() - timedelta(seconds=1)
    out: dict[str, Any] = {}
    try:
        async with p.db.session() as s:
            first = await s.scalar(select(OutboxEvent.id).order_by(OutboxEvent.id.desc()))
            last_event = await s.scalar(
                select(InstanceActionEvent.id).order_by(InstanceActionEvent.id.desc())
            )
            out["result"] = await fn(
                p.rt, s, "private", part, adopting, started, started - timedelta(5)
            )
            await s.flush()
            table = Server.__table__
            out["rows"] = [
                dict(r._mapping) for r in await s.execute(select(table).order_by(table.c.id))
            ]
            out["sent"] = [
                (e.event_type, e.subject, e.project_id, e.payload, e.created_at)
                for e in await s.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.id > (first or 0))
                    .order_by(OutboxEvent.id)
                )
            ]
            out["logged"] = [
                (e.action_id, e.event, e.result, e.details, e.host, e.start_time, e.finish_time)
                for e in await s.scalars(
                    select(InstanceActionEvent)
                    .where(InstanceActionEvent.id > (last_event or 0))
                    .order_by(InstanceActionEvent.id)
                )
            ]
            out["claims"] = sorted(await s.scalars(select(Claim.server_id)))
            cloud = await s.get(Cloud, "private")
            assert cloud is not None
            out["claimed"] = (cloud.instances_claimed, cloud.vcpus_claimed, cloud.ram_mb_claimed)
            out["boots"] = p.rt.boots.known("private")
            raise Undo
    except Undo:
        pass
    return out


async def test_a_slice_writes_what_the_orm_path_wrote(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ids, remote = await _world(p)
        part = _listing(ids, remote, p.clock.now())
        answered: list[bool] = []

        async def observe_as_before(*args: Any) -> tuple[list[str], bool]:
            done = await observe(*args)
            answered.append(done.answered)
            return done.leaks, done.rescheduled

        before = await _effects(p, orm_observe, part, {ids[5]})
        after = await _effects(p, observe_as_before, part, {ids[5]})
        assert after == before
        assert answered == [True]  # servers changed state: stacks waiting on them step
        # And the slice did change what it should have (not two no-ops alike).
        rows = {r["id"]: r for r in after["rows"]}
        assert (
            rows[ids[0]]["status"] == "SHUTOFF"
            and rows[ids[0]]["desired_state"] == DesiredState.STOPPED
        )
        assert rows[ids[1]]["host"] == "elsewhere"
        assert rows[ids[2]]["status"] == "ERROR"
        assert rows[ids[3]]["addresses"] == {"private": [{"addr": "10.9.9.9", "version": 4}]}
        assert rows[ids[4]]["status"] == "ACTIVE" and rows[ids[4]]["launched_at"] is not None
        assert rows[ids[5]]["remote_id"] == remote[ids[5]]
        assert rows[ids[6]]["fault_code"] == 404
        assert rows[ids[7]]["status"] == "ACTIVE"
        assert after["result"] == (["copy"], False)
        assert [t for t, *_ in after["sent"]] == [
            "compute.instance.power_off.end",
            "compute.instance.power_off.end",
            "compute.instance.update",
            "compute.instance.create.end",
            "compute.instance.create.end",
            "compute.instance.power_on.end",
            "compute.instance.update",
        ]
        assert [e[1] for e in after["logged"]] == ["adopt", "sync"]
        assert len(after["boots"]) == 1 and ids[6] not in after["claims"]
    finally:
        await p.close()


async def test_a_slice_of_changes_costs_the_same_few_statements_at_any_size(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ids, remote = await _world(p)
        started = p.clock.now()

        async def stop(some: list[str]) -> list[str]:
            part = [
                RemoteServer(remote_id=remote[i], canopy_id=i, name="vm", state=RemoteState.STOPPED)
                for i in some
            ]
            with statements(p.db) as seen:
                try:
                    async with p.db.session() as s:
                        await observe(p.rt, s, "private", part, set(), started, None)
                        raise Undo
                except Undo:
                    pass
            return seen

        one, six = await stop(ids[:1]), await stop([ids[i] for i in (0, 1, 2, 3, 6, 8)])
        assert len(six) == len(one)
        for seen in (one, six):
            assert sum(q.startswith("UPDATE servers") for q in seen) == 1
            assert sum(q.startswith("INSERT INTO outbox") for q in seen) == 1
            assert sum(q.startswith("SELECT") for q in seen) == 1  # the locked read
    finally:
        await p.close()


async def test_a_slice_that_changes_a_state_wakes_the_stacks_when_it_commits(
    db_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """A stack waiting on a server steps as soon as the slice that saw the server's new
    state has committed, not after the rest of the pass (its other pages, the rows gone,
    recording the pass); a slice that changes nothing wakes nothing."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ids, remote = await _world(p)
        started = p.clock.now()
        unchanged = [
            RemoteServer(
                remote_id=remote[ids[8]], canopy_id=ids[8], name="vm", state=RemoteState.RUNNING
            )
        ]
        async with p.db.session() as s:
            done = await observe(p.rt, s, "private", unchanged, set(), started, None)
        assert (done.leaks, done.rescheduled, done.answered) == ([], False, False)

        sync = p.worker.sync
        woken_at_record: list[bool] = []
        record = sync_module.record_pass

        async def recording(*args: Any) -> Any:  # the pass records itself: after its slices
            woken_at_record.append(p.rt.signal("orchestration").is_set())
            return await record(*args)

        monkeypatch.setattr(sync_module, "record_pass", recording)
        await p.sim("private").power_out_of_band(remote[ids[0]], PowerAction.STOP)
        p.rt.signal("orchestration").clear()
        assert await sync.sync_cloud("private", force=True)
        assert woken_at_record == [True]

        p.rt.signal("orchestration").clear()
        woken_at_record.clear()
        assert await sync.sync_cloud("private", force=True)  # nothing changed since
        assert woken_at_record == [False]
    finally:
        await p.close()
