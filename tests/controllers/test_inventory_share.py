"""Inventory records canopy's share of a cloud: its total less what servers canopy did not
create use there; placement then fills no more than that, and a burst goes to the next
cloud instead of running into the cloud's quota."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, update

from canopy.domain.specs import Capacity
from canopy.store.models import CapacityBlock, Cloud, Server

from .harness import Plane, make_plane

CLOUDS = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
host_ram_mb = 16384
quota_vcpus = 10
boot_seconds = 30
api_latency_ms = 0

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 4
host_vcpus = 16
price_per_vcpu_hour = 0.05
boot_seconds = 30
api_latency_ms = 0
"""

# Fill the private cloud to the brim before bursting: the capacity filter alone decides.
FILL = {"scheduler": {"burst_threshold": 1.0}}


async def _plane(db_url: str, tmp_path: Path) -> Plane:
    return await make_plane(db_url, tmp_path, toml=CLOUDS, overrides=FILL)


async def _cloud(p: Plane, name: str) -> Cloud:
    async with p.db.read() as s:
        row = await s.get(Cloud, name)
        assert row is not None
        return row


async def _placed(p: Plane) -> dict[str | None, int]:
    async with p.db.read() as s:
        rows = await s.execute(select(Server.cloud, func.count()).group_by(Server.cloud))
        return {cloud: int(n) for cloud, n in rows}


async def _all_active(p: Plane, n: int) -> None:
    async def done() -> bool:
        return await p.count(status="ACTIVE") >= n

    await p.run_until(done, steps=120)


async def test_servers_canopy_did_not_create_shrink_its_share_and_a_burst_goes_on(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        # The operator's own VM in the same account: 4 of the 10 quota vcpus.
        theirs = await p.sim("private").create_out_of_band(None, "operator-vm", vcpus=4)
        await p.worker.inventory.run_once(force=True)
        private = await _cloud(p, "private")
        assert (private.vcpus_capacity, private.vcpus_others) == (6, 4)
        assert (private.ram_mb_capacity, private.ram_mb_others) == (2 * 16384 - 512, 512)
        assert (private.instances_capacity, private.instances_others) == (None, None)

        # A burst of eight 1-vcpu servers: six fit the private cloud, two go public.
        await p.create(8)
        await p.worker.placement.run_once()
        assert await _placed(p) == {"private": 6, "public": 2}
        await _all_active(p, 8)
        servers = await p.servers()
        assert all(s.attempts == 1 for s in servers), [s.attempt_log for s in servers]
        async with p.db.read() as s:
            assert (await s.execute(select(func.count()).select_from(CapacityBlock))).scalar() == 0
        assert not (await _cloud(p, "private")).blocklisted_until

        # Once booted, canopy's servers are its own, not others': the share holds.
        await p.worker.inventory.run_once(force=True)
        private = await _cloud(p, "private")
        assert (private.vcpus_capacity, private.vcpus_others) == (6, 4)
        assert private.vcpus_claimed == 6

        # The operator's VM goes: the whole quota is canopy's again.
        assert await p.sim("private").delete_out_of_band(theirs.remote_id)
        await p.worker.inventory.run_once(force=True)
        private = await _cloud(p, "private")
        assert (private.vcpus_capacity, private.vcpus_others) == (10, 0)
    finally:
        await p.close()


async def _booting(p: Plane) -> None:
    """Step until every server's create was answered; they are still booting."""

    async def created() -> bool:
        return all(s.remote_id is not None for s in await p.servers())

    await p.run_until(created, steps=20)
    assert await p.count(status="BUILD") == await p.count()


async def test_canopys_own_boots_do_not_move_what_others_use(db_url: str, tmp_path: Path) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        await p.create(4)
        await p.worker.placement.run_once()
        # Placed, no create sent yet: the cloud counts none of them.
        await p.worker.inventory.run_once(force=True)
        private = await _cloud(p, "private")
        assert (private.vcpus_capacity, private.vcpus_others, private.vcpus_claimed) == (10, 0, 4)

        # Created and booting: the cloud counts them, canopy cannot tell whether it does
        # yet, so what others use stays as it was.
        await _booting(p)
        await p.worker.inventory.run_once(force=True)
        assert ((await _cloud(p, "private")).vcpus_others) == 0

        # Others' use that grows meanwhile still shows: the cloud has 8 in use and at
        # most canopy's 4 of it are canopy's.
        theirs = await p.sim("private").create_out_of_band(None, "operator-vm", vcpus=4)
        await p.worker.inventory.run_once(force=True)
        private = await _cloud(p, "private")
        assert (private.vcpus_capacity, private.vcpus_others) == (6, 4)

        # Booted: canopy's own for sure; the operator's VM goes, and so do its 4.
        await _all_active(p, 4)
        assert await p.sim("private").delete_out_of_band(theirs.remote_id)
        await p.worker.inventory.run_once(force=True)
        private = await _cloud(p, "private")
        assert (private.vcpus_capacity, private.vcpus_others) == (10, 0)
    finally:
        await p.close()


async def test_a_first_pass_during_canopys_boots_errs_towards_less_room(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        await p.create(4)
        await p.worker.placement.run_once()
        await _booting(p)
        async with p.db.session() as s:  # as after migration 0028: nothing recorded yet
            await s.execute(update(Cloud).values(vcpus_others=None))
        await p.worker.inventory.run_once(force=True)
        private = await _cloud(p, "private")
        # The 4 booting may not be counted by the cloud yet: they count as others' until
        # they are up, so the room left is 2, never more than the 6 truly free.
        assert (private.vcpus_capacity, private.vcpus_others) == (6, 4)
        assert private.vcpus_capacity - private.vcpus_claimed == 2
        await _all_active(p, 4)
        await p.worker.inventory.run_once(force=True)
        private = await _cloud(p, "private")
        assert (private.vcpus_capacity, private.vcpus_others) == (10, 0)
    finally:
        await p.close()


async def test_a_cloud_that_does_not_say_what_is_free_keeps_its_total(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        sim = p.sim("public")

        async def limits_only() -> Capacity:  # EC2's shape: configured limits, no usage
            return Capacity(vcpus_total=40, ram_mb_total=None, instances_total=12)

        sim.capacity = limits_only  # type: ignore[method-assign]
        await sim.create_out_of_band(None, "operator-vm", vcpus=8)
        await p.worker.inventory.run_once(force=True)
        public = await _cloud(p, "public")
        assert (public.vcpus_capacity, public.vcpus_others) == (40, None)
        assert (public.ram_mb_capacity, public.instances_capacity) == (None, 12)
    finally:
        await p.close()
