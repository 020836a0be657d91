"""A server's way through: create, place, boot, stop, start, reboot, delete."""

from __future__ import annotations

import base64
from pathlib import Path

from sqlalchemy import func, select

from canopy.store.models import Claim, Cloud, InstanceAction, InstanceActionEvent, Placement

from .harness import Plane, make_plane

SMALL = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 65536
boot_seconds = 3
action_seconds = 1
api_latency_ms = 10

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 3
action_seconds = 1
price_per_vcpu_hour = 0.05
"""


async def _status(p: Plane, sid: str) -> str:
    return (await p.service.get(p.ctx, sid)).status


async def test_create_boot_stop_start_reboot_delete(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=SMALL)
    try:
        [sid] = await p.create(1)
        assert await _status(p, sid) == "BUILD"

        async def active() -> bool:
            return await _status(p, sid) == "ACTIVE"

        await p.run_until(active)
        server = await p.service.get(p.ctx, sid)
        assert server.cloud == "private"
        assert server.remote_id is not None
        assert server.launched_at is not None
        assert server.addresses["private"][0]["addr"].startswith("10.")
        live = await p.sim("private").all_servers()
        assert [r.canopy_id for r in live] == [sid]

        await p.service.stop(p.ctx, sid)
        assert (await p.service.get(p.ctx, sid)).task_state == "powering-off"

        async def shutoff() -> bool:
            return await _status(p, sid) == "SHUTOFF"

        await p.run_until(shutoff)
        assert (await p.sim("private").get(server.remote_id)) is not None

        await p.service.start(p.ctx, sid)
        await p.run_until(active)

        await p.service.reboot(p.ctx, sid, hard=True)
        assert await _status(p, sid) == "HARD_REBOOT"
        await p.run_until(active)

        await p.service.delete(p.ctx, sid)

        async def gone() -> bool:
            return await _status(p, sid) == "DELETED"

        await p.run_until(gone)
        assert await p.sim("private").all_servers() == []
        async with p.db.read() as s:
            assert (await s.execute(select(func.count()).select_from(Claim))).scalar_one() == 0
            cloud = await s.get(Cloud, "private")
            assert cloud is not None and cloud.vcpus_claimed == 0 and cloud.instances_claimed == 0
            actions = [
                a.action
                for a in (
                    await s.execute(select(InstanceAction).order_by(InstanceAction.id))
                ).scalars()
            ]
            assert actions == ["create", "stop", "start", "reboot", "delete"]
            events = [e.event for e in (await s.execute(select(InstanceActionEvent))).scalars()]
            assert "schedule (attempt 1)" in events and "spawn (attempt 1)" in events
            placement = (await s.execute(select(Placement))).scalar_one()
            assert placement.cloud == "private"
            assert placement.explanation["filters"]
    finally:
        await p.close()


async def test_delete_before_placement_needs_no_cloud(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=SMALL)
    try:
        [sid] = await p.create(1)
        await p.service.delete(p.ctx, sid)
        await p.step()
        assert (await p.service.get(p.ctx, sid)).status == "DELETED"
        assert await p.sim("private").all_servers() == []
    finally:
        await p.close()


async def test_user_data_reaches_the_cloud(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=SMALL)
    try:
        script = base64.b64encode(b"#cloud-config\nruncmd: [echo hello]\n").decode()
        [with_data] = await p.create(1, name="with", user_data=script)
        [without] = await p.create(1, name="without")

        async def active() -> bool:
            return await p.count(status="ACTIVE") == 2

        await p.run_until(active)
        for sid, expected in ((with_data, script), (without, None)):
            server = await p.service.get(p.ctx, sid)
            assert server.cloud is not None and server.remote_id is not None
            assert await p.sim(server.cloud).user_data_of(server.remote_id) == expected
    finally:
        await p.close()
