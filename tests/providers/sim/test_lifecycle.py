"""A sim server's life: create, boot, find, delete; idempotency and durability of state."""

from __future__ import annotations

import asyncio

import pytest

from canopy.domain.clock import FakeClock
from canopy.domain.errors import TransientError
from canopy.domain.states import Ability, RemoteState
from canopy.providers.base import Compute, remote_name

from .helpers import MakeSim, spec


async def test_sim_is_a_compute_driver(make_sim: MakeSim) -> None:
    sim = make_sim(price_per_vcpu_hour=0.05, price_per_gb_ram_hour=0.01)
    assert isinstance(sim, Compute)
    assert sim.name == "private"
    assert all(sim.abilities.has(a) for a in Ability)
    assert await sim.offerings() == []
    assert sim.price_per_hour(2, 4096) == pytest.approx(2 * 0.05 + 4 * 0.01)


async def test_create_is_pending_until_boot_completes_then_running(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(boot_seconds=2.0)
    s = spec(name="web", flavor="m1.small")
    created = await sim.create(s)
    assert created.state is RemoteState.PENDING
    assert created.canopy_id == s.canopy_id
    assert created.name == remote_name("web", s.canopy_id)
    assert created.flavor == "m1.small"
    assert created.addresses == {}
    assert created.created_at == clock.now()

    clock.advance(1.9)
    got = await sim.get(created.remote_id)
    assert got is not None and got.state is RemoteState.PENDING

    clock.advance(0.2)
    got = await sim.get(created.remote_id)
    assert got is not None
    assert got.state is RemoteState.RUNNING
    assert got.addresses == {"private": ["10.0.0.5"]}
    assert got.fault is None
    # The boot finishing counts as a change, as Nova's updated_at moves on ACTIVE.
    assert got.updated_at is not None and created.created_at is not None
    assert (got.updated_at - created.created_at).total_seconds() == pytest.approx(2.0)


async def test_each_server_gets_its_own_deterministic_address(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(boot_seconds=0.0)
    a = await sim.create(spec())
    b = await sim.create(spec())
    assert a.addresses == {"private": ["10.0.0.5"]}
    assert b.addresses == {"private": ["10.0.0.6"]}


async def test_create_twice_with_one_canopy_id_makes_one_server(make_sim: MakeSim) -> None:
    sim = make_sim()
    s = spec()
    first = await sim.create(s)
    second = await sim.create(s)
    assert second.remote_id == first.remote_id
    assert [x.remote_id for x in await sim.all_servers()] == [first.remote_id]


async def test_create_is_idempotent_across_two_clouds_sharing_the_file(
    make_sim: MakeSim,
) -> None:
    worker_a, worker_b = make_sim(seed=1), make_sim(seed=2)
    s = spec()
    first = await worker_a.create(s)
    second = await worker_b.create(s)
    assert second.remote_id == first.remote_id
    assert len(await worker_a.all_servers()) == 1
    assert len(await worker_b.all_servers()) == 1


@pytest.mark.parametrize("atomic_create", [True], ids=["atomic"])
async def test_concurrent_creates_of_one_canopy_id_make_one_server_when_atomic(
    make_sim: MakeSim,
) -> None:
    workers = [make_sim(seed=n, api_latency_ms=20.0) for n in range(2)]
    s = spec()
    results = await asyncio.gather(*(workers[n % 2].create(s) for n in range(20)))
    assert len({r.remote_id for r in results}) == 1
    assert len(await workers[0].all_servers()) == 1


@pytest.mark.parametrize("atomic_create", [False], ids=["nova"])
async def test_concurrent_creates_of_one_canopy_id_each_create_on_nova(
    make_sim: MakeSim,
) -> None:
    # Each looks the id up, finds nothing, then creates: Nova has no client token.
    workers = [make_sim(seed=n, api_latency_ms=20.0) for n in range(2)]
    s = spec()
    results = await asyncio.gather(*(workers[n % 2].create(s) for n in range(4)))
    assert len({r.remote_id for r in results}) == 4
    assert [r.canopy_id for r in await workers[0].all_servers()] == [s.canopy_id] * 4
    # Once one exists, a create finds it.
    again = await workers[1].create(s)
    assert again.remote_id == results[0].remote_id


async def test_lost_create_response_then_retry_returns_the_same_server(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(lost_response_rate=1.0)
    s = spec()
    with pytest.raises(TransientError, match="response lost"):
        await sim.create(s)
    # The server exists although the caller never heard of it ...
    planted = await sim.find(s.canopy_id)
    assert planted is not None
    # ... and a retry (here or on another worker) returns it instead of a duplicate.
    again = await sim.create(s)
    assert again.remote_id == planted.remote_id
    other_worker = make_sim(seed=7)
    assert (await other_worker.create(s)).remote_id == planted.remote_id
    assert len(await sim.all_servers()) == 1


async def test_find_returns_the_live_tagged_server_only(make_sim: MakeSim) -> None:
    sim = make_sim()
    s = spec()
    created = await sim.create(s)
    found = await sim.find(s.canopy_id)
    assert found is not None and found.remote_id == created.remote_id
    assert await sim.find("no-such-canopy-id") is None
    await sim.delete(created.remote_id)
    assert await sim.find(s.canopy_id) is None
    # After a delete the same canopy id may be created again, as a new server.
    recreated = await sim.create(s)
    assert recreated.remote_id != created.remote_id


async def test_get_is_none_for_missing_and_deleted_servers(make_sim: MakeSim) -> None:
    sim = make_sim()
    created = await sim.create(spec())
    assert await sim.get("00000000-0000-0000-0000-000000000000") is None
    await sim.delete(created.remote_id)
    assert await sim.get(created.remote_id) is None


async def test_delete_is_idempotent_and_soft(make_sim: MakeSim) -> None:
    sim = make_sim()
    created = await sim.create(spec())
    await sim.delete(created.remote_id)
    await sim.delete(created.remote_id)
    await sim.delete("never-existed")
    assert await sim.all_servers() == []
    gone = await sim.all_servers(include_deleted=True)
    assert [(g.remote_id, g.state) for g in gone] == [(created.remote_id, RemoteState.DELETED)]


async def test_state_survives_closing_and_reopening_the_file(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    first = make_sim(hosts=3, host_vcpus=8)
    s = spec(vcpus=2)
    created = await first.create(s)
    await first.close()

    # Reopened with other host settings: the file's hosts are kept, like a real cloud's.
    clock.advance(5)
    second = make_sim(hosts=1, host_vcpus=2)
    got = await second.get(created.remote_id)
    assert got is not None
    assert got.state is RemoteState.RUNNING
    assert got.canopy_id == s.canopy_id
    assert (await second.create(s)).remote_id == created.remote_id
    cap = await second.capacity()
    assert (cap.vcpus_total, cap.vcpus_free) == (24, 22)


async def test_a_closed_cloud_can_be_used_again(make_sim: MakeSim) -> None:
    sim = make_sim()
    created = await sim.create(spec())
    await sim.close()
    assert (await sim.get(created.remote_id)) is not None


async def test_every_call_waits_its_api_latency_on_the_clock(
    make_sim: MakeSim, clock: FakeClock, atomic_create: bool
) -> None:
    sim = make_sim(api_latency_ms=20.0)
    start = clock.now()
    created = await sim.create(spec())
    # On Nova a create is two calls: the lookup of the canopy id, then the create.
    assert (clock.now() - start).total_seconds() == pytest.approx(0.02 if atomic_create else 0.04)
    start = clock.now()
    await sim.get(created.remote_id)
    await sim.list()
    await sim.capacity()
    assert (clock.now() - start).total_seconds() == pytest.approx(0.06)
    # The out-of-band helpers are the operator's, not API calls: no latency.
    before = clock.now()
    await sim.all_servers()
    assert clock.now() == before
