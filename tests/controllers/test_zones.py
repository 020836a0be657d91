"""Zones inside a cloud: a capacity error in one zone blocklists that zone for that flavor,
the server tries the cloud's other zones, then the next cloud; the zone is recorded."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from canopy.store.models import CapacityBlock, Cloud, Flavor, InstanceActionEvent, Placement

from .harness import Plane, make_plane

CLOUDS = """
[scheduler]
blocklist_seconds = 60
max_attempts = {max_attempts}

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 8
boot_seconds = 1
zones = ["a", "b"]

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 4
host_vcpus = 8
boot_seconds = 1
price_per_vcpu_hour = 0.05
"""


async def _plane(db_url: str, tmp_path: Path, max_attempts: int = 3) -> Plane:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS.format(max_attempts=max_attempts))
    await p.worker.sync.run_once(force=True)  # the first pass learns the zones
    return p


async def _settled(p: Plane, n: int = 1) -> None:
    async def done() -> bool:
        return await p.count(status="ACTIVE") + await p.count(status="ERROR") >= n

    await p.run_until(done)


async def _blocks(p: Plane) -> set[tuple[str, str, str]]:
    async with p.db.read() as s:
        rows = await s.execute(
            select(CapacityBlock.cloud, CapacityBlock.zone, Flavor.name).join(
                Flavor, Flavor.id == CapacityBlock.flavor_id
            )
        )
        return {(c, z, f) for c, z, f in rows}


async def test_the_zones_are_learnt_by_sync_and_shown_on_the_cloud(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        async with p.db.read() as s:
            private = await s.get(Cloud, "private")
            public = await s.get(Cloud, "public")
        assert private is not None and public is not None
        assert private.zones == ["a", "b"] and private.zones_updated_at is not None
        assert public.zones == []
    finally:
        await p.close()


async def test_servers_are_placed_in_zones_and_record_where_they_are(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        # The zone is a hash of the random server id: 20 servers all in one of two zones
        # happens once in 2**19 runs (8 made it once in 128, and the test flaked).
        ids = await p.create(20)
        await _settled(p, 20)
        servers = await p.servers()
        assert {s.cloud for s in servers} == {"private"}
        zones = {s.id: s.zone for s in servers}
        assert set(zones.values()) == {"a", "b"}  # spread over both
        # The zone the cloud reports is the one placement chose.
        remote = {r.canopy_id: r.zone for r in await p.sim("private").all_servers()}
        assert remote == zones
        async with p.db.read() as s:
            placements = (
                await s.execute(select(Placement).where(Placement.server_id == ids[0]))
            ).scalars()
            (first,) = list(placements)
        assert first.explanation["zone"] == zones[ids[0]]
        assert first.reason.endswith(f"; zone {zones[ids[0]]}")
    finally:
        await p.close()


async def test_a_capacity_error_in_one_zone_moves_the_server_to_the_other_zone(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        p.sim("private").settings.full_zones = ["a"]
        n = 6
        await p.create(n)
        await _settled(p, n)
        # The zone is a hash of the random server id: all 6 went to zone b once in 64
        # runs, no capacity error came, and the test flaked. One more at a time until one
        # was sent to zone a first (zone b holds 16: at most 11 here, 4 more below).
        while not [s for s in await p.servers() if s.attempt_log] and n < 11:
            await p.create(1)
            n += 1
            await _settled(p, n)
        servers = await p.servers()
        assert {(s.cloud, s.zone, s.status) for s in servers} == {("private", "b", "ACTIVE")}
        # Zone a is blocklisted for m1.small only, and only on that cloud; no whole-cloud block.
        assert await _blocks(p) == {("private", "a", "m1.small")}
        async with p.db.read() as s:
            private = await s.get(Cloud, "private")
            assert private is not None and private.blocklisted_until is None
        # A server that failed in zone a says so in its attempts and its events.
        moved = [s for s in servers if s.attempt_log]
        assert moved, "some server should have been sent to zone a first"
        for s in moved:
            assert [(a["cloud"], a["zone"]) for a in s.attempt_log] == [("private", "a")]
        async with p.db.read() as s:
            details = [
                d
                for (d,) in await s.execute(
                    select(InstanceActionEvent.details).where(InstanceActionEvent.result == "Error")
                )
            ]
        assert any(d.startswith("private (zone a): capacity error") for d in details)
        # While the block holds, new servers go straight to zone b.
        before = len(moved)
        await p.create(4)
        await _settled(p, n + 4)
        again = [s for s in await p.servers() if s.attempt_log]
        assert len(again) == before
    finally:
        await p.close()


async def test_every_zone_full_moves_the_server_to_the_next_cloud_without_using_up_attempts(
    db_url: str, tmp_path: Path
) -> None:
    # Two attempts: one for the private cloud (both its zones), one for the public cloud.
    p = await _plane(db_url, tmp_path, max_attempts=2)
    try:
        p.sim("private").settings.full_zones = ["a", "b"]
        [sid] = await p.create(1)
        await _settled(p)
        [server] = await p.servers()
        assert (server.id, server.cloud, server.status) == (sid, "public", "ACTIVE")
        assert sorted(a["zone"] for a in server.attempt_log) == ["a", "b"]
        assert await _blocks(p) == {("private", "a", "m1.small"), ("private", "b", "m1.small")}
    finally:
        await p.close()


async def test_a_capacity_error_without_a_zone_blocks_that_flavor_not_the_cloud(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(
        db_url, tmp_path, toml=CLOUDS.format(max_attempts=3).replace('zones = ["a", "b"]', "")
    )
    try:
        private = p.sim("private")
        private.settings.capacity_error_rate = 1.0
        await p.create(1, flavor="m1.small")
        await _settled(p)
        private.settings.capacity_error_rate = 0.0
        assert await _blocks(p) == {("private", "", "m1.small")}
        # The same flavor goes to the next cloud while the block holds; another flavor
        # still fits the private cloud and goes there.
        await p.create(1, name="small", flavor="m1.small")
        await p.create(1, name="tiny", flavor="m1.tiny")
        await _settled(p, 3)
        where = {s.name: s.cloud for s in await p.servers()}
        assert where["small"] == "public"
        assert where["tiny"] == "private"
        # When the block runs out, the private cloud takes the flavor again.
        p.clock.advance(61)
        await p.create(1, name="later", flavor="m1.small")
        await _settled(p, 4)
        assert {s.name: s.cloud for s in await p.servers()}["later"] == "private"
    finally:
        await p.close()
