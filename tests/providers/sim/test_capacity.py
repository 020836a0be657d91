"""Hosts, first-fit placement, capacity reports and account quotas of the sim cloud."""

from __future__ import annotations

import contextlib

import pytest

from canopy.domain.errors import CapacityError, CloudQuotaError
from canopy.domain.specs import Capacity
from canopy.domain.states import PowerAction

from .helpers import MakeSim, spec


async def test_capacity_reports_totals_and_free_across_hosts(make_sim: MakeSim) -> None:
    sim = make_sim(hosts=2, host_vcpus=8, host_ram_mb=16384)
    assert await sim.capacity() == Capacity(
        vcpus_total=16,
        ram_mb_total=32768,
        instances_total=None,
        vcpus_free=16,
        ram_mb_free=32768,
        instances_free=None,
    )
    await sim.create(spec(vcpus=3, ram_mb=4096))
    cap = await sim.capacity()
    assert (cap.vcpus_free, cap.ram_mb_free) == (13, 28672)


async def test_placement_is_first_fit_over_hosts(make_sim: MakeSim) -> None:
    sim = make_sim(hosts=2, host_vcpus=4)
    # Two 2-vcpu servers fill h1; spreading them would leave no host for 4 vcpus.
    await sim.create(spec(vcpus=2))
    await sim.create(spec(vcpus=2))
    await sim.create(spec(vcpus=4))
    assert (await sim.capacity()).vcpus_free == 0
    # The host a server landed on shows in a boot failure's fault text.
    sim2 = make_sim(hosts=2, host_vcpus=4, path=sim.state_file.with_name("other.db"))
    await sim2.create(spec(vcpus=3))
    failed = await sim2.create_out_of_band("c1", "x", vcpus=2, failed=True)
    assert failed.fault == "boot failed on host h2"


async def test_no_host_that_fits_raises_capacity_error_and_delete_frees_room(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(hosts=2, host_vcpus=4)
    servers = [await sim.create(spec(vcpus=2)) for _ in range(4)]
    big = spec(vcpus=2)
    with pytest.raises(CapacityError) as err:
        await sim.create(big)
    assert err.value.cloud == "private"
    assert "no valid host on cloud 'private'" in str(err.value)
    assert "2 vcpus" in str(err.value)
    assert len(await sim.all_servers()) == 4  # nothing was created

    await sim.delete(servers[1].remote_id)
    placed = await sim.create(big)
    assert placed.canopy_id == big.canopy_id
    assert len(await sim.all_servers()) == 4


async def test_ram_and_disk_limit_placement_too(make_sim: MakeSim) -> None:
    sim = make_sim(hosts=1, host_vcpus=64, host_ram_mb=4096, host_disk_gb=100)
    with pytest.raises(CapacityError, match="8192 MB RAM"):
        await sim.create(spec(vcpus=1, ram_mb=8192, disk_gb=10))
    with pytest.raises(CapacityError, match="200 GB disk"):
        await sim.create(spec(vcpus=1, ram_mb=1024, disk_gb=200))
    await sim.create(spec(vcpus=1, ram_mb=4096, disk_gb=100))


async def test_a_cloud_without_hosts_says_so(make_sim: MakeSim) -> None:
    sim = make_sim(hosts=0)
    with pytest.raises(CapacityError, match="has no hosts"):
        await sim.create(spec())


async def test_stopped_and_errored_servers_still_hold_their_room(make_sim: MakeSim) -> None:
    sim = make_sim(hosts=1, host_vcpus=4, boot_seconds=0.0)
    a = await sim.create(spec(vcpus=2))
    await sim.power(a.remote_id, PowerAction.STOP)
    await sim.create_out_of_band("c-err", "broken", vcpus=2, failed=True)
    with pytest.raises(CapacityError):
        await sim.create(spec(vcpus=1))


async def test_instance_quota_raises_cloud_quota_error(make_sim: MakeSim) -> None:
    sim = make_sim(quota_instances=2)
    first = await sim.create(spec())
    await sim.create(spec())
    with pytest.raises(CloudQuotaError, match="instances") as err:
        await sim.create(spec())
    assert err.value.cloud == "private"
    cap = await sim.capacity()
    assert (cap.instances_total, cap.instances_free) == (2, 0)
    await sim.delete(first.remote_id)
    await sim.create(spec())


async def test_vcpu_quota_raises_cloud_quota_error_and_narrows_capacity(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(hosts=4, host_vcpus=16, quota_vcpus=5)
    cap = await sim.capacity()
    assert (cap.vcpus_total, cap.vcpus_free) == (5, 5)
    await sim.create(spec(vcpus=4))
    with pytest.raises(CloudQuotaError, match="cores: requested 2, 4 of 5 in use"):
        await sim.create(spec(vcpus=2))
    await sim.create(spec(vcpus=1))
    assert (await sim.capacity()).vcpus_free == 0


async def test_host_usage_stays_equal_to_the_live_servers_on_it(make_sim: MakeSim) -> None:
    sim = make_sim(hosts=3, host_vcpus=4)
    made = []
    for n in range(10):
        vcpus = 1 + n % 3
        with contextlib.suppress(CapacityError):
            made.append((await sim.create(spec(vcpus=vcpus)), vcpus))
    for server, _ in made[::2]:
        await sim.delete(server.remote_id)
    await sim.delete_out_of_band(made[1][0].remote_id)
    await sim.create_out_of_band(None, "operator-vm", vcpus=1)

    assert await sim.usage_drift() == []
    live = {s.remote_id for s in await sim.all_servers()}
    used = sum(vcpus for server, vcpus in made if server.remote_id in live) + 1
    assert (await sim.capacity()).vcpus_free == 12 - used
