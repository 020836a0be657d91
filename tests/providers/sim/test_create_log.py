"""The sim's own record of creates: what it made, what it answered with, what it refused."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from canopy.domain.clock import FakeClock
from canopy.domain.errors import CapacityError, CloudError, CloudQuotaError, TransientError
from canopy.domain.specs import ServerSpec
from canopy.providers.sim.creates import (
    Outcome,
    Refusal,
    created_more_than_once,
    created_while_live,
)
from canopy.providers.sim.db import SCHEMA_VERSION

from .helpers import MakeSim, spec


async def test_each_create_through_the_api_is_logged_with_its_outcome(
    make_sim: MakeSim, clock: FakeClock, atomic_create: bool
) -> None:
    sim = make_sim()
    s = spec()
    first = await sim.create(s)
    clock.advance(1)
    again = await sim.create(s)
    await sim.create_out_of_band("operator-made", "pet")  # not through the API: not logged

    log = await sim.create_log()
    assert [(r.canopy_id, r.remote_id, r.outcome) for r in log] == [
        (s.canopy_id, first.remote_id, Outcome.CREATED),
        (s.canopy_id, again.remote_id, Outcome.RETURNED),
    ]
    assert again.remote_id == first.remote_id
    assert log[0].at == first.created_at
    assert (log[1].at - log[0].at).total_seconds() == pytest.approx(1.0)
    # Only an atomic cloud (EC2 with a ClientToken) matches the token; Nova has none and
    # found the server by its canopy id.
    assert [r.token_matched for r in log] == [False, atomic_create]
    assert all(r.refusal is None and r.reason is None and r.deleted_at is None for r in log)


async def test_a_create_whose_answer_was_lost_is_logged_as_created(make_sim: MakeSim) -> None:
    sim = make_sim(lost_response_rate=1.0)
    s = spec()
    with pytest.raises(TransientError, match="response lost"):
        await sim.create(s)
    retried = await sim.create(s)
    assert [(r.outcome, r.remote_id) for r in await sim.create_log()] == [
        (Outcome.CREATED, retried.remote_id),
        (Outcome.RETURNED, retried.remote_id),
    ]


async def test_refusals_are_logged_with_their_reason_and_create_nothing(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(hosts=1, host_vcpus=4, quota_instances=2)
    await sim.create(spec(vcpus=3))
    with pytest.raises(CapacityError) as full:
        await sim.create(spec(vcpus=2))
    await sim.create(spec(vcpus=1))
    with pytest.raises(CloudQuotaError) as quota:
        await sim.create(spec(vcpus=1))
    with pytest.raises(CloudError, match="invalid key_name") as bad_key:
        await sim.create(dataclasses.replace(spec(), key_name="never-imported"))
    sim.settings.capacity_error_rate = 1.0
    with pytest.raises(CapacityError, match="injected fault") as injected:
        await sim.create(spec())

    log = await sim.create_log()
    assert [r.outcome for r in log] == [Outcome.CREATED, Outcome.REFUSED, Outcome.CREATED] + [
        Outcome.REFUSED
    ] * 3
    refusals = [(r.refusal, r.reason, r.remote_id) for r in log if r.outcome is Outcome.REFUSED]
    assert refusals == [
        (Refusal.CAPACITY, str(full.value), None),
        (Refusal.QUOTA, str(quota.value), None),
        (Refusal.INVALID, str(bad_key.value), None),
        (Refusal.CAPACITY, str(injected.value), None),
    ]
    assert "none of its 1 hosts has 2 vcpus" in str(full.value)
    assert len(await sim.all_servers()) == 2


@pytest.mark.parametrize("atomic_create", [False], ids=["nova"])
async def test_overlapping_creates_on_nova_are_two_creates_in_the_log(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    # Two workers (or one step run twice) create the same canopy id at the same moment.
    sim = make_sim(api_latency_ms=20.0)
    s = spec()
    a, b = await asyncio.gather(sim.create(s), sim.create(s))
    assert a.remote_id != b.remote_id

    log = await sim.create_log()
    twice = created_more_than_once(log)
    assert list(twice) == [s.canopy_id]
    assert {r.remote_id for r in twice[s.canopy_id]} == {a.remote_id, b.remote_id}
    [double] = created_while_live(log)
    assert double.startswith(f"private #2 at {clock.now().isoformat()}: {s.canopy_id}: created")
    assert f"created {b.remote_id} while private #1 " in double
    assert double.endswith(f"created {a.remote_id} was live")
    # Deleting the duplicate (as leak collection does) hides it from the end state, not
    # from the log.
    await sim.delete(b.remote_id)
    assert len(await sim.all_servers()) == 1
    log = await sim.create_log()
    assert [len(rs) for rs in created_more_than_once(log).values()] == [2]
    [still] = created_while_live(log)
    assert f"created {b.remote_id}, deleted at " in still


@pytest.mark.parametrize("atomic_create", [True], ids=["atomic"])
async def test_overlapping_creates_on_an_atomic_cloud_create_once(make_sim: MakeSim) -> None:
    sim = make_sim(api_latency_ms=20.0)
    s = spec()
    a, b = await asyncio.gather(sim.create(s), sim.create(s))
    assert a.remote_id == b.remote_id
    log = await sim.create_log()
    assert [(r.outcome, r.token_matched) for r in log] == [
        (Outcome.CREATED, False),
        (Outcome.RETURNED, True),
    ]
    assert created_more_than_once(log) == {}
    assert created_while_live(log) == []


async def test_a_create_after_the_earlier_server_was_deleted_is_no_double(
    make_sim: MakeSim, clock: FakeClock, tmp_path: Path
) -> None:
    # A boot that failed is deleted, then the server is created again on another cloud.
    private = make_sim(name="private")
    public = make_sim(name="public", path=tmp_path / "public.db")
    s = spec()
    failed = await private.create(s)
    clock.advance(5)
    await private.delete(failed.remote_id)
    clock.advance(1)
    await public.create(s)
    both = await private.create_log() + await public.create_log()
    assert list(created_more_than_once(both)) == [s.canopy_id]
    assert created_while_live(both) == []
    # Had the first not been deleted, the second create would be a double.
    clock.advance(1)
    await public.delete((await public.all_servers())[0].remote_id)
    await private.create(s)
    clock.advance(1)
    await public.create(s)
    both = await private.create_log() + await public.create_log()
    [double] = created_while_live(both)
    assert double.startswith(f"public #2 at {clock.now().isoformat()}: {s.canopy_id}: created")
    assert " while private #2 at " in double


def test_a_state_file_without_the_log_gets_it(tmp_path: Path) -> None:
    from canopy.config import SimSettings
    from canopy.providers.sim.state import SimStore

    path = tmp_path / "v3.db"
    store = SimStore(path, SimSettings(hosts=1), "old")
    with store.file.borrowed():  # creates the file at the newest version
        pass
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE create_log")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()

    async def reopen() -> None:
        from canopy.providers.sim.driver import SimCompute

        sim = SimCompute("old", SimSettings(hosts=1, api_latency_ms=0), path, FakeClock(), 1)
        try:
            assert await sim.create_log() == []
            created = await sim.create(spec())
            assert [r.remote_id for r in await sim.create_log()] == [created.remote_id]
        finally:
            await sim.close()

    asyncio.run(reopen())
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_a_sim_cloud_is_nova_like_unless_told_otherwise(tmp_path: Path) -> None:
    from canopy.config import SimSettings
    from canopy.providers.sim.driver import SimCompute

    sim = SimCompute("default", SimSettings(), tmp_path / "default.db", FakeClock(), 1)
    try:
        s = spec()
        a, b = await asyncio.gather(sim.create(s), sim.create(s))
        assert a.remote_id != b.remote_id
        assert list(created_more_than_once(await sim.create_log())) == [s.canopy_id]
    finally:
        await sim.close()


async def test_a_first_attempt_skips_the_look_up_and_a_retry_finds_the_server(
    make_sim: MakeSim, clock: FakeClock, atomic_create: bool
) -> None:
    # Nova-like: a look-up and a create, each an API call with its latency; a first
    # attempt (no create was ever asked for this id) is the create alone.
    sim = make_sim(api_latency_ms=100.0, latency_jitter=0.0)

    async def took(s: ServerSpec) -> tuple[float, str]:
        t0 = clock.now()
        made = await sim.create(s)
        return (clock.now() - t0).total_seconds(), made.remote_id

    first = dataclasses.replace(spec(), first_attempt=True)
    seconds, made = await took(first)
    assert seconds == pytest.approx(0.1)
    seconds, _ = await took(spec())  # not a first attempt, nothing to find: both calls
    assert seconds == pytest.approx(0.1 if atomic_create else 0.2)
    # A retry of the first (its answer lost, say) looks and finds the same server.
    seconds, again = await took(dataclasses.replace(first, first_attempt=False))
    assert again == made
    assert seconds == pytest.approx(0.1)
    assert created_more_than_once(await sim.create_log()) == {}
