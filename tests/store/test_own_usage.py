"""What canopy's own servers use on a cloud, as the cloud may count it: surely (at rest,
booted before the pass), maybe (on their way), or not at all (placed, create not sent); a
reservation's servers by their flavor, and its room not at all (the cloud counts servers,
not claims). Read from the cloud's counters and the few moving or reserved rows."""

from __future__ import annotations

from datetime import timedelta

from canopy.domain.clock import FakeClock
from canopy.domain.states import DesiredState, Phase
from canopy.store.claims import Usage, add_claim
from canopy.store.db import Database
from canopy.store.models import Cloud, Flavor
from canopy.store.own_usage import own_on_cloud

from .helpers import add_servers, server_row


async def test_each_of_canopy_s_servers_counts_as_the_cloud_may_count_it(
    seeded: Database, clock: FakeClock
) -> None:
    now = clock.now()
    booted = now - timedelta(minutes=5)
    rows = {
        # at rest, booted: surely counted (2 vcpus)
        "steady": server_row(now, phase=Phase.STEADY, launched_at=booted),
        # booting: its create went out (3 vcpus, maybe)
        "booting": server_row(now, phase=Phase.CONVERGE, create_requested_at=now),
        # placed, its create not sent: no cloud counts it (5 vcpus)
        "placed": server_row(now, phase=Phase.CREATE),
        # booted, now being deleted: maybe let go already (7 vcpus)
        "going": server_row(
            now, phase=Phase.DELETE, launched_at=booted, desired_state=DesiredState.DELETED
        ),
        # booted, being stopped: surely counted (11 vcpus)
        "stopping": server_row(now, phase=Phase.POWER, launched_at=booted),
    }
    sizes = {"steady": 2, "booting": 3, "placed": 5, "going": 7, "stopping": 11}
    async with seeded.session() as s:
        ids = await add_servers(s, list(rows.values()))
        cloud = await s.get(Cloud, "private", with_for_update=True)
        assert cloud is not None
        for sid, name in zip(ids, rows, strict=True):
            add_claim(
                s,
                cloud,
                server_id=sid,
                vcpus=sizes[name],
                ram_mb=sizes[name] * 1024,
                disk_gb=0,
                price_per_hour_micros=0,
                now=now,
            )
        # A lease's room in use now (13 vcpus): not canopy's use, only its servers are: one
        # running (flavor 2), one booting.
        running = server_row(
            now, phase=Phase.STEADY, launched_at=booted, reservation_id="lease-1", cloud="private"
        )
        booting = server_row(
            now,
            phase=Phase.CONVERGE,
            create_requested_at=now,
            reservation_id="lease-1",
            cloud="private",
        )
        await add_servers(s, [running, booting])
        add_claim(
            s,
            cloud,
            reservation_id="lease-1",
            vcpus=13,
            ram_mb=13 * 1024,
            disk_gb=0,
            price_per_hour_micros=0,
            now=now,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1),
        )
    async with seeded.read() as s:
        sure, maybe = await own_on_cloud(s, "private", now)
        flavor = await s.get(Flavor, "2")
        assert flavor is not None
    v, r = flavor.vcpus, flavor.ram_mb
    assert (sure.vcpus, sure.ram_mb, sure.instances) == (2 + 11 + v, 13 * 1024 + r, 3)
    assert (maybe.vcpus, maybe.ram_mb, maybe.instances) == (3 + 7 + v, 10 * 1024 + r, 3)
    async with seeded.read() as s:
        assert await own_on_cloud(s, "public", now) == (Usage(), Usage())
        assert await own_on_cloud(s, "nowhere", now) == (Usage(), Usage())
