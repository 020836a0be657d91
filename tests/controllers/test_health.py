"""Refused credentials: the cloud turns unhealthy at once, servers go elsewhere without
spending an attempt, and the cloud is healthy again when a call succeeds."""

from __future__ import annotations

from pathlib import Path

from canopy.store.models import Cloud

from .harness import Plane, make_plane

CLOUDS = """
[scheduler]
max_attempts = 1
schedule_timeout_seconds = 600
retry_seconds = 1

[controllers]
unhealthy_after_failures = 5

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
boot_seconds = 1

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 2
host_vcpus = 8
boot_seconds = 1
price_per_vcpu_hour = 0.05
"""


async def _cloud(p: Plane, name: str) -> Cloud:
    async with p.db.read() as s:
        c = await s.get(Cloud, name)
        assert c is not None
        return c


async def test_refused_credentials_send_the_server_elsewhere_without_an_attempt(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        private = p.sim("private")
        private.settings.refuse_credentials = True
        [sid] = await p.create(1)
        # The first step places it on the private cloud (still healthy in the record) and
        # its create is refused: with max_attempts = 1, a counted attempt would be ERROR.
        await p.run_until(lambda: _active(p))
        server = await p.service.get(p.ctx, sid)
        assert (server.cloud, server.status) == ("public", "ACTIVE")
        assert server.attempt_log == []
        c = await _cloud(p, "private")
        # One refusal is enough (not unhealthy_after_failures = 5).
        assert not c.healthy
        assert c.health_message.startswith("credentials refused: ")
        # While unhealthy, nothing is placed there.
        await p.create(2, name="more")
        await p.run_until(lambda: _active(p, 3))
        assert {s.cloud for s in await p.servers()} == {"public"}
        # Fixed: the next sync's list succeeds and the cloud is healthy again.
        private.settings.refuse_credentials = False
        p.clock.advance(5)
        await p.worker.sync.run_once()
        c = await _cloud(p, "private")
        assert c.healthy and c.health_message == ""
        await p.create(1, name="home")
        await p.run_until(lambda: _active(p, 4))
        assert {s.name: s.cloud for s in await p.servers()}["home"] == "private"
    finally:
        await p.close()


async def test_when_every_cloud_refuses_the_server_waits_for_one_to_work(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        for name in ("private", "public"):
            p.sim(name).settings.refuse_credentials = True
        [sid] = await p.create(1)
        for _ in range(10):
            await p.step()
        server = await p.service.get(p.ctx, sid)
        assert (server.status, server.task_state) == ("BUILD", "scheduling")
        assert server.attempt_log == []
        assert not (await _cloud(p, "private")).healthy
        assert not (await _cloud(p, "public")).healthy
        p.sim("public").settings.refuse_credentials = False
        await p.run_until(lambda: _active(p))
        assert (await p.service.get(p.ctx, sid)).cloud == "public"
    finally:
        await p.close()


async def test_a_refused_power_action_is_retried_not_failed(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [sid] = await p.create(1)
        await p.run_until(lambda: _active(p))
        cloud = (await p.service.get(p.ctx, sid)).cloud
        assert cloud is not None
        p.sim(cloud).settings.refuse_credentials = True
        await p.service.stop(p.ctx, sid)
        for _ in range(3):
            await p.step()
        server = await p.service.get(p.ctx, sid)
        assert (server.status, server.task_state) == ("ACTIVE", "powering-off")
        p.sim(cloud).settings.refuse_credentials = False

        async def stopped() -> bool:
            return (await p.service.get(p.ctx, sid)).status == "SHUTOFF"

        await p.run_until(stopped, advance=5.0)
    finally:
        await p.close()


async def _active(p: Plane, n: int = 1) -> bool:
    return await p.count(status="ACTIVE") >= n
