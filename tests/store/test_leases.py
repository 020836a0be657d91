"""Row leases: due, unleased rows go to one worker; expired leases are taken over; any
leased table works the same way; expiry is read on one clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from canopy.controllers.runtime import Runtime
from canopy.domain.clock import FakeClock, SystemClock
from canopy.domain.states import Phase
from canopy.store.db import Database
from canopy.store.leases import (
    DatabaseClock,
    lease_job,
    lease_rows,
    lease_servers,
    release_lease,
    renew_leases,
    unleased,
)
from canopy.store.models import Job, Server

from .helpers import add_servers, server_row, settings

SCHEDULE = [Server.phase == Phase.SCHEDULE]


async def _lease(
    db: Database, clock: FakeClock, worker: str, *, limit: int = 10, lease: float = 30.0
) -> list[str]:
    async with db.session() as s:
        rows = await lease_servers(
            s, where=SCHEDULE, worker=worker, now=clock.now(), lease_seconds=lease, limit=limit
        )
        return [r.id for r in rows]


async def _holders(db: Database) -> dict[str, str | None]:
    async with db.read() as s:
        return {sid: by for sid, by in await s.execute(select(Server.id, Server.claimed_by))}


async def test_takes_only_due_unleased_matching_rows(seeded: Database, clock: FakeClock) -> None:
    db = seeded
    now = clock.now()
    sec = timedelta(seconds=1)
    rows = {
        "due-none": server_row(now, sid="due-none", created_at=now - 5 * sec),
        "due-past": server_row(
            now, sid="due-past", next_attempt_at=now - sec, created_at=now - 4 * sec
        ),
        "due-now": server_row(now, sid="due-now", next_attempt_at=now, created_at=now - 3 * sec),
        "later": server_row(now, sid="later", next_attempt_at=now + sec),
        "held": server_row(now, sid="held", claimed_by="other", claim_expires_at=now + sec),
        "expired": server_row(
            now,
            sid="expired",
            claimed_by="dead",
            claim_expires_at=now - sec,
            created_at=now - 2 * sec,
        ),
        "other-phase": server_row(now, sid="other-phase", phase=Phase.STEADY),
    }
    async with db.session() as s:
        await add_servers(s, list(rows.values()))

    got = await _lease(db, clock, "w1", lease=30)
    # Oldest first; only due rows that nobody holds, in the phase asked for.
    assert got == ["due-none", "due-past", "due-now", "expired"]
    holders = await _holders(db)
    assert {k for k, v in holders.items() if v == "w1"} == set(got)
    assert holders["held"] == "other"
    assert holders["later"] is None and holders["other-phase"] is None
    async with db.read() as s:
        row = await s.get(Server, "due-none")
        assert row is not None and row.claim_expires_at == now + timedelta(seconds=30)

    # Now they are all leased: a second worker gets nothing.
    assert await _lease(db, clock, "w2") == []
    # "later" becomes due; "held" expires.
    clock.advance(2)
    assert sorted(await _lease(db, clock, "w2")) == ["held", "later"]


async def test_returned_rows_carry_the_lease(seeded: Database, clock: FakeClock) -> None:
    async with seeded.session() as s:
        await add_servers(s, [server_row(clock.now())])
        rows = await lease_servers(
            s, where=SCHEDULE, worker="w1", now=clock.now(), lease_seconds=12, limit=5
        )
    assert len(rows) == 1
    assert rows[0].claimed_by == "w1"
    assert rows[0].claim_expires_at == clock.now() + timedelta(seconds=12)


async def test_respects_limit(seeded: Database, clock: FakeClock) -> None:
    db = seeded
    now = clock.now()
    async with db.session() as s:
        ids = await add_servers(
            s, [server_row(now, created_at=now + timedelta(seconds=i)) for i in range(5)]
        )
    first = await _lease(db, clock, "w1", limit=2)
    assert first == ids[:2]
    second = await _lease(db, clock, "w2", limit=2)
    assert second == ids[2:4]
    assert await _lease(db, clock, "w3", limit=2) == ids[4:]
    assert await _lease(db, clock, "w4", limit=2) == []


async def test_expired_lease_is_retaken_by_another_worker(
    seeded: Database, clock: FakeClock
) -> None:
    db = seeded
    async with db.session() as s:
        [sid] = await add_servers(s, [server_row(clock.now())])
    assert await _lease(db, clock, "w1", lease=10) == [sid]
    clock.advance(9)
    assert await _lease(db, clock, "w2", lease=10) == []  # w1 still holds it
    clock.advance(2)  # w1 died and never renewed
    assert await _lease(db, clock, "w2", lease=10) == [sid]
    assert (await _holders(db))[sid] == "w2"
    assert await _lease(db, clock, "w1", lease=10) == []  # w1 lost it


async def test_nothing_to_lease(seeded: Database, clock: FakeClock) -> None:
    assert await _lease(seeded, clock, "w1") == []


async def test_skip_locked_gives_concurrent_workers_disjoint_rows(
    pg_seeded: Database, clock: FakeClock
) -> None:
    """PostgreSQL: while w1's transaction is still open, w2 skips its rows (no blocking)."""
    db = pg_seeded
    now = clock.now()
    async with db.session() as s:
        ids = await add_servers(
            s, [server_row(now, created_at=now + timedelta(seconds=i)) for i in range(6)]
        )
    async with db.session() as s1:
        a = await lease_servers(s1, where=SCHEDULE, worker="w1", now=now, lease_seconds=30, limit=3)
        async with db.session() as s2:
            # Without SKIP LOCKED this would wait for s1 (and the test would hang).
            b = await asyncio.wait_for(
                lease_servers(s2, where=SCHEDULE, worker="w2", now=now, lease_seconds=30, limit=10),
                timeout=5,
            )
        a_ids, b_ids = [r.id for r in a], [r.id for r in b]
    assert a_ids == ids[:3]
    assert b_ids == ids[3:]
    holders = await _holders(db)
    assert [holders[i] for i in ids] == ["w1"] * 3 + ["w2"] * 3


async def test_skip_locked_many_workers_at_once(pg_seeded: Database, clock: FakeClock) -> None:
    """PostgreSQL: eight workers racing for 40 rows never share one, and miss none."""
    db = pg_seeded
    now = clock.now()
    async with db.session() as s:
        ids = await add_servers(
            s, [server_row(now, created_at=now + timedelta(seconds=i)) for i in range(40)]
        )
    gate = asyncio.Event()

    async def worker(n: int) -> list[str]:
        async with db.session() as s:
            await gate.wait()
            rows = await lease_servers(
                s, where=SCHEDULE, worker=f"w{n}", now=now, lease_seconds=30, limit=5
            )
            await asyncio.sleep(0)  # hold the locks while the others run
            return [r.id for r in rows]

    tasks = [asyncio.create_task(worker(n)) for n in range(8)]
    await asyncio.sleep(0)
    gate.set()
    got = await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    flat = [i for batch in got for i in batch]
    assert len(flat) == len(set(flat))  # disjoint
    assert sorted(flat) == sorted(ids)  # 8 x 5 = 40: nobody came back short
    holders = await _holders(db)
    for n, batch in enumerate(got):
        assert all(holders[i] == f"w{n}" for i in batch)


# Jobs ---------------------------------------------------------------------------------


async def _job(db: Database, clock: FakeClock, worker: str, name: str = "sync:x") -> Job | None:
    async with db.session() as s:
        return await lease_job(s, name=name, worker=worker, now=clock.now(), lease_seconds=10)


async def test_lease_job_one_worker_at_a_time(seeded: Database, clock: FakeClock) -> None:
    db = seeded
    job = await _job(db, clock, "w1")
    assert job is not None and job.name == "sync:x" and job.claimed_by == "w1"
    assert job.claim_expires_at == clock.now() + timedelta(seconds=10)
    async with db.read() as s:
        stored = await s.get(Job, "sync:x")
        assert stored is not None and stored.claimed_by == "w1" and stored.runs == 0
    assert await _job(db, clock, "w2") is None  # held by w1
    clock.advance(5)
    renewed = await _job(db, clock, "w1")  # the holder may renew
    assert renewed is not None
    assert renewed.claim_expires_at == clock.now() + timedelta(seconds=10)
    clock.advance(9)
    assert await _job(db, clock, "w2") is None  # renewed lease still running
    clock.advance(2)
    taken = await _job(db, clock, "w2")  # w1 stopped renewing
    assert taken is not None and taken.claimed_by == "w2"
    assert await _job(db, clock, "w1") is None
    # Different jobs are independent.
    other = await _job(db, clock, "w1", name="sync:y")
    assert other is not None and other.claimed_by == "w1"


async def test_lease_job_respects_next_run_at(seeded: Database, clock: FakeClock) -> None:
    db = seeded
    async with db.session() as s:
        job = await lease_job(s, name="j", worker="w1", now=clock.now(), lease_seconds=10)
        assert job is not None
        # The run finished: schedule the next one and let go of the lease.
        job.next_run_at = clock.now() + timedelta(seconds=30)
        job.claimed_by, job.claim_expires_at = None, None
        job.runs += 1
    assert await _job(db, clock, "w1", "j") is None
    assert await _job(db, clock, "w2", "j") is None
    clock.advance(29)
    assert await _job(db, clock, "w2", "j") is None
    clock.advance(1)
    again = await _job(db, clock, "w2", "j")
    assert again is not None and again.claimed_by == "w2" and again.runs == 1


async def test_lease_job_row_locked_elsewhere_is_skipped(
    pg_seeded: Database, clock: FakeClock
) -> None:
    """PostgreSQL: a job whose row another transaction holds is skipped without waiting."""
    db = pg_seeded
    await _job(db, clock, "w0")
    clock.advance(60)  # w0's lease is long expired: only the row lock protects the job now
    async with db.session() as s1:
        first = await lease_job(s1, name="sync:x", worker="w1", now=clock.now(), lease_seconds=10)
        assert first is not None
        async with db.session() as s2:
            second = await asyncio.wait_for(
                lease_job(s2, name="sync:x", worker="w2", now=clock.now(), lease_seconds=10),
                timeout=5,
            )
        assert second is None


async def test_lease_job_created_by_two_workers_at_once(
    pg_seeded: Database, clock: FakeClock
) -> None:
    """PostgreSQL: two workers seeing a brand-new job at once: one gets it, the other None."""
    db = pg_seeded
    async with db.session() as s1:
        first = await lease_job(s1, name="new", worker="w1", now=clock.now(), lease_seconds=10)
        assert first is not None

        async def other() -> Job | None:
            async with db.session() as s2:
                return await lease_job(
                    s2, name="new", worker="w2", now=clock.now(), lease_seconds=10
                )

        task = asyncio.create_task(other())
        await asyncio.sleep(0.2)  # let w2 reach the database while w1 is uncommitted
    second = await asyncio.wait_for(task, timeout=5)
    assert second is None


# Any leased table ---------------------------------------------------------------------


async def _jobs(db: Database, clock: FakeClock, worker: str, *where: Any) -> list[str]:
    async with db.session() as s:
        rows = await lease_rows(
            s, Job, where=where, worker=worker, now=clock.now(), lease_seconds=10, limit=5
        )
        return [j.name for j in rows]


async def _renew_jobs(db: Database, clock: FakeClock, worker: str, *names: str) -> set[Any]:
    async with db.session() as s:
        return await renew_leases(s, Job, names, worker=worker, now=clock.now(), lease_seconds=10)


async def test_lease_renew_and_release_work_on_any_leased_table(
    seeded: Database, clock: FakeClock
) -> None:
    """`jobs` has the lease columns too: the same functions drive it as they drive servers."""
    db = seeded
    async with db.session() as s:
        s.add_all([Job(name=f"j{i}", runs=0) for i in range(3)])
    assert await _jobs(db, clock, "w1", Job.name != "j2") == ["j0", "j1"]
    async with db.read() as s:
        j0 = await s.get(Job, "j0")
        assert j0 is not None and j0.claim_expires_at == clock.now() + timedelta(seconds=10)
    assert await _jobs(db, clock, "w2") == ["j2"]  # w1's are held
    clock.advance(8)
    # Renewal: only the holder's unexpired leases, in one statement.
    assert await _renew_jobs(db, clock, "w1", "j0", "j1", "j2") == {"j0", "j1"}
    async with db.session() as s:
        await release_lease(s, Job, "j1", "w1")
        await release_lease(s, Job, "j0", "w2")  # not w2's: left alone
    clock.advance(5)  # past the first lease (and w2's), not w1's renewed one
    assert await _jobs(db, clock, "w3") == ["j1", "j2"]
    clock.advance(6)  # w1's renewed lease has run out: it cannot be renewed any more
    assert await _renew_jobs(db, clock, "w1", "j0") == set()


async def test_rows_in_flight_are_never_leased_again_by_their_worker(
    seeded: Database, clock: FakeClock
) -> None:
    db = seeded
    async with db.session() as s:
        ids = await add_servers(s, [server_row(clock.now()) for _ in range(3)])
    assert sorted(await _lease(db, clock, "w1", lease=10)) == sorted(ids)
    clock.advance(11)  # run out, but w1 is still working on ids[0]
    async with db.session() as s:
        rows = await lease_servers(
            s,
            where=SCHEDULE,
            worker="w1",
            now=clock.now(),
            lease_seconds=10,
            limit=10,
            exclude={ids[0]},
        )
    assert sorted(r.id for r in rows) == sorted(ids[1:])


# One clock for lease expiry -----------------------------------------------------------


async def test_lease_expiry_follows_the_database_clock_not_the_workers(
    pg_seeded: Database,
) -> None:
    """PostgreSQL: workers whose clocks disagree still agree on when a lease runs out."""
    db, dbclock = pg_seeded, DatabaseClock()
    real = datetime.now(UTC)
    async with db.session() as s:
        [sid] = await add_servers(s, [server_row(real)])
    async with db.session() as s:
        [row] = await lease_servers(
            s,
            where=SCHEDULE,
            worker="w1",
            now=dbclock.now(),
            due_at=real,
            lease_seconds=30,
            limit=5,
        )
    # The lease ends 30 s after the database's now (which this machine's clock agrees with).
    assert row.claim_expires_at is not None
    assert real + timedelta(seconds=29) < row.claim_expires_at < real + timedelta(seconds=40)
    # w2's clock runs an hour fast: by its own clock, w1's lease ran out long ago.
    skewed = real + timedelta(hours=1)
    async with db.read() as s:
        by_own_clock = await s.scalar(select(func.count()).where(unleased(Server, skewed)))
        assert by_own_clock == 1  # what a worker reading its own clock would take
    async with db.session() as s:
        taken = await lease_servers(
            s,
            where=SCHEDULE,
            worker="w2",
            now=dbclock.now(),
            due_at=skewed,
            lease_seconds=30,
            limit=5,
        )
        assert taken == []
        assert (
            await renew_leases(s, Server, [sid], worker="w2", now=dbclock.now(), lease_seconds=30)
            == set()
        )
        assert await renew_leases(
            s, Server, [sid], worker="w1", now=dbclock.now(), lease_seconds=0.2
        ) == {sid}
    # The database's clock is the only one that can end the lease: this is the one test
    # that waits, because the clock under test is the database's own.
    await asyncio.sleep(0.5)
    async with db.session() as s:
        taken = await lease_servers(
            s,
            where=SCHEDULE,
            worker="w2",
            now=dbclock.now(),
            due_at=real,
            lease_seconds=30,
            limit=5,
        )
        assert [r.id for r in taken] == [sid]


async def test_the_runtime_reads_leases_on_the_database_clock_only_on_postgres_in_production(
    db: Database, tmp_path: Path
) -> None:
    s = settings(str(tmp_path))
    real = Runtime(db=db, settings=s, drivers={}, clock=SystemClock())
    if db.is_postgres:
        assert isinstance(real.lease_clock, DatabaseClock)
    else:
        assert real.lease_clock is real.clock  # one machine, one clock
    fake = FakeClock()
    injected = Runtime(db=db, settings=s, drivers={}, clock=fake)
    assert injected.lease_clock is fake  # tests keep lease expiry in hand on both backends
