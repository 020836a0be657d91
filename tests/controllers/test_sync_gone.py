"""Servers deleted out of band, several in one slice: each row's effects, written in bulk
(controllers/sync_gone.py), are those one server's were."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from canopy.store.claims import COUNTERS
from canopy.store.models import (
    Claim,
    Cloud,
    InstanceAction,
    InstanceActionEvent,
    OutboxEvent,
    Server,
)

from .harness import make_plane

CLOUDS = """
[controllers]
sync_seconds = 5
full_sync_seconds = 3600

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 16
boot_seconds = 2
"""


async def test_servers_gone_in_one_slice_each_fail_with_their_event_and_notification(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ids = await p.create_active(4)
        assert await p.worker.sync.sync_cloud("private", force=True)
        gone, kept = ids[:3], ids[3]
        async with p.db.read() as s:
            listed = await s.execute(select(Server.id, Server.remote_id).where(Server.id.in_(ids)))
            remote = {sid: rid for sid, rid in listed.all()}
            before = await s.scalar(select(func.count()).select_from(OutboxEvent))
            cloud = await s.get(Cloud, "private")
            assert cloud is not None and cloud.instances_claimed == 4
            one = await s.scalar(select(Claim).where(Claim.server_id == kept))
            assert one is not None
        for sid in gone:
            rid = remote[sid]
            assert rid is not None and await p.sim("private").delete_out_of_band(rid)
        p.clock.advance(5)
        assert await p.worker.sync.sync_cloud("private", force=True)  # changes since
        async with p.db.read() as s:
            rows = {r.id: r for r in (await s.scalars(select(Server))).all()}
            assert {sid for sid, r in rows.items() if r.status == "ERROR"} == set(gone)
            assert rows[kept].status == "ACTIVE"
            for sid in gone:
                assert rows[sid].fault_code == 404
                assert "deleted outside canopy" in (rows[sid].fault_message or "")
            # Their claims are given back, and the counters moved by exactly theirs.
            claimed = set(await s.scalars(select(Claim.server_id)))
            assert claimed == {kept}
            cloud = await s.get(Cloud, "private")
            assert cloud is not None
            for counter, amount in COUNTERS:
                assert getattr(cloud, counter) == getattr(one, amount), counter
            # One instance action event each, on its create action.
            events = (
                await s.execute(
                    select(InstanceAction.server_id, InstanceActionEvent.result)
                    .join(InstanceAction, InstanceAction.id == InstanceActionEvent.action_id)
                    .where(InstanceActionEvent.event == "sync", InstanceAction.action == "create")
                )
            ).all()
            assert sorted(sid for sid, _ in events) == sorted(gone)
            assert {result for _, result in events} == {"Error"}
            # And one notification each: the server (launched) went to ERROR.
            sent = (
                await s.execute(
                    select(OutboxEvent.event_type, OutboxEvent.payload)
                    .order_by(OutboxEvent.id)
                    .offset(before)
                )
            ).all()
            assert [t for t, _ in sent] == ["compute.instance.update"] * 3
            assert sorted(pl["instance_id"] for _, pl in sent) == sorted(gone)
            assert {pl["state"] for _, pl in sent} == {"error"}
    finally:
        await p.close()
