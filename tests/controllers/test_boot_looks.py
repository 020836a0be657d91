"""Seeing a finished boot promptly (bench/burst.py, issue 9): a boot that ends after its
last look is looked for again within a fraction of a second, not a converging interval
later; a create recorded before the cloud's boot time was known is looked for once a pass
learns it; asks merged into one pass come at the latest of them; and a burst of asks does
not make sync list the cloud more often than once per GAP."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from canopy.controllers.boot_times import (
    AGAIN,
    GAP,
    LATE,
    SPREAD,
    BootTimes,
    SyncAsks,
    look_again,
    looks_after_pass,
)
from canopy.domain.states import Phase
from canopy.providers.base import ListPage
from canopy.store.models import Server

from .harness import Plane, make_plane

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cloud(boot: float) -> str:
    return f"""
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 64
boot_seconds = {boot}
api_latency_ms = 0
"""


# At rest every 10 s, and every 5 s while something converges: only asked passes can see
# a boot within a fraction of a second.
SLOW = {"controllers": {"sync_seconds": 10.0, "sync_converging_seconds": 5.0}}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_asks_within_spread_are_one_pass_at_the_latest_and_never_later_than_spread() -> None:
    asks = SyncAsks()
    asks.ask("c", at(1.0))
    asks.ask("c", at(1.03))  # a batch recorded 30 ms later: one pass, at its ask
    assert asks.heads() == [at(1.03)]
    # A pass moved later stays within SPREAD of the first ask it answers: the next ask
    # past that is a pass of its own.
    asks.ask("c", at(1.0 + SPREAD + 0.001))
    assert asks.heads() == [at(1.03)]
    asks.served("c", at(1.03))
    assert asks.heads() == [at(1.0 + SPREAD + 0.001)]


def test_the_clouds_own_times_teach_when_the_boot_had_ended_at_the_latest() -> None:
    boots = BootTimes()
    # Passes say 2-3 s after the record; the cloud says 2.3 s from its creation, made
    # during the 0.1 s call that ended at the record: ended 2.2-2.3 s after the record.
    # A look 2.3 s after the next record sees such a boot; one at 2.25 s may not.
    boots.booted("a", at(0), at(3.0), at(2.0), requested=at(-0.1), cloud_took=2.3)
    assert boots.known("a") == [pytest.approx(2.3)]


async def _until_active(p: Plane, sid: str, step: float = 0.02, limit: float = 20.0) -> float:
    t0 = p.clock.now()
    while (p.clock.now() - t0).total_seconds() < limit:
        if (await p.service.get(p.ctx, sid)).status == "ACTIVE":
            return (p.clock.now() - t0).total_seconds()
        await p.step(step)
    raise AssertionError(f"{sid} not ACTIVE after {limit}s")


async def test_a_boot_ending_after_its_last_look_is_looked_for_again_soon(
    db_url: str, tmp_path: Path
) -> None:
    # The cloud boots in 1.3 s; sync learned 1.0 s: the looks (0.9 s, 1.02 s) come too
    # early. Before, the boot was then seen by the pass a converging interval (5 s) on.
    p = await make_plane(db_url, tmp_path, toml=cloud(1.3), overrides=SLOW)
    try:
        await p.worker.sync.run_once(force=True)
        for _ in range(5):
            p.rt.boots.observe("private", 1.0)
        [sid] = await p.create(1)
        took = await _until_active(p, sid)
        # The boot (1.3 s), the steps to place and record it, and the look again at
        # 1.02 + AGAIN[2] = 1.37 s after the record.
        assert took <= 1.0 + LATE + AGAIN[2] + 0.1, took
    finally:
        await p.close()


async def test_a_burst_is_seen_within_a_step_of_each_boot_at_most_one_pass_per_gap(
    db_url: str, tmp_path: Path
) -> None:
    # 40 creates, one every 20 ms, each recorded on its own: 40 sets of looks. The cloud
    # boots in 1.05 s, sync learned 1.0 s (bench/burst.py measured the learned time
    # 40-60 ms early): the last batches' boots ended after their looks, and were seen a
    # converging interval (5 s) later. Now every boot is seen soon after it ends, and
    # sync lists the cloud once per GAP at most.
    p = await make_plane(db_url, tmp_path, toml=cloud(1.05), overrides=SLOW)
    try:
        await p.worker.sync.run_once(force=True)
        for _ in range(5):
            p.rt.boots.observe("private", 1.0)
        sim = p.sim("private")
        listing = sim.list_page
        lists: list[datetime] = []

        async def counted(changes_since: datetime | None, marker: str | None, n: int) -> ListPage:
            lists.append(p.clock.now())
            return await listing(changes_since, marker, n)

        sim.list_page = counted  # type: ignore[method-assign]
        ids: list[str] = []
        seen: dict[str, datetime] = {}
        t0 = p.clock.now()
        for i in range(200):
            if i < 40:
                ids += await p.create(1, name=f"vm-{i}")
            await p.step(0.02)
            for sid in ids:
                if sid not in seen and (await p.service.get(p.ctx, sid)).status == "ACTIVE":
                    seen[sid] = p.clock.now()
            if len(seen) == 40:
                break
        assert len(seen) == 40
        late = []
        async with p.db.read() as s:
            for sid in ids:
                row = await s.get(Server, sid)
                assert row is not None and row.remote_recorded_at is not None
                # Booted 1.05 s after its create; seen (at the test's next step) after.
                late.append((seen[sid] - row.remote_recorded_at).total_seconds() - 1.05)
        assert max(late) <= AGAIN[0] + SPREAD + 2 * 0.02, sorted(late)
        window = (p.clock.now() - t0).total_seconds()
        assert len(lists) <= window / GAP + 1, (len(lists), window)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(lists)]
        assert min(gaps) >= GAP - 1e-9, gaps
    finally:
        await p.close()


async def test_look_again_asks_for_each_unseen_boot_ever_later_then_leaves_it(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=cloud(1.0))
    try:
        a, b, c = await p.create(3)
        async with p.db.session() as s:
            for sid, recorded in ((a, at(0)), (b, at(0.1)), (c, at(-5))):
                await s.execute(
                    update(Server)
                    .where(Server.id == sid)
                    .values(cloud="private", phase=Phase.CONVERGE, remote_recorded_at=recorded)
                )
        last = 1.0
        # A pass at 1.0 s: `a`'s last look is now; `b`'s (1.1 s) and `c`'s are not due.
        assert await look_again(p.db, "private", at(1.0), last) == at(1.0 + AGAIN[0])
        # A pass at 1.12 s missed `a` (past its first look again) and `b` (its last look).
        assert await look_again(p.db, "private", at(1.12), last) == at(1.1 + AGAIN[0])
        # At 1.2 s: `a` next at 1.0 + AGAIN[2], `b` at 1.1 + AGAIN[1], the earlier.
        assert await look_again(p.db, "private", at(1.2), last) == at(1.1 + AGAIN[1])
        # Past the last look again, the converging interval sees them; `c` long since.
        assert await look_again(p.db, "private", at(1.1 + last + AGAIN[-1]), last) is None
        async with p.db.session() as s:
            await s.execute(update(Server).values(phase=Phase.STEADY))
        assert await look_again(p.db, "private", at(1.0), last) is None  # all seen
    finally:
        await p.close()


async def test_an_asked_pass_waits_gap_after_the_clouds_last_pass(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=cloud(1.0), overrides=SLOW)
    try:
        sync = p.worker.sync
        await sync.run_once(force=True)
        now = p.clock.now()
        p.rt.sync_soon.ask("private", now)
        assert not sync.may_be_due("private", now)
        assert sync.next_due_in(now) == pytest.approx(GAP)
        p.clock.advance(GAP)
        assert sync.may_be_due("private", p.clock.now())
        assert await sync.run_once() == 1
    finally:
        await p.close()


async def test_a_create_recorded_before_the_boot_time_was_known_is_looked_for_once_learned(
    db_url: str, tmp_path: Path
) -> None:
    # A cloud's first burst: no boot seen yet, so the creates ask for no look. `first`
    # is seen by the converging pass (5 s), which learns the boot time (1.3 s); `second`,
    # recorded meanwhile, boots 1.3 s after its record, before the next converging pass.
    # Before, it was seen by that pass (5 s after the first); now by a look the first
    # pass asks for when it learns the boot time.
    p = await make_plane(db_url, tmp_path, toml=cloud(1.3), overrides=SLOW)
    try:
        await p.worker.sync.run_once(force=True)
        [first] = await p.create(1, name="first")
        await p.step(4.5)
        assert p.rt.boots.known("private") == []
        [second] = await p.create(1, name="second")
        # Nothing asked before the converging pass (5 s after `first`'s record): no look.
        [head] = p.rt.sync_soon.heads()
        assert (head - p.clock.now()).total_seconds() > 0.4
        took = await _until_active(p, second)
        assert p.rt.boots.known("private") == [pytest.approx(1.3, abs=0.05)] * 2
        assert (await p.service.get(p.ctx, first)).status == "ACTIVE"
        # Placed and recorded in a step or two, booted 1.3 s after the record, seen by the
        # look just past the p95 (LATE) at the latest.
        assert took <= 1.3 + LATE + 4 * 0.02, took
    finally:
        await p.close()


async def test_a_pass_asks_the_looks_still_ahead_of_creates_recorded_before_looks_were_known(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=cloud(1.0))
    try:
        a, b, c, d = await p.create(4)
        async with p.db.session() as s:
            for sid, recorded, phase in (
                (a, at(0), Phase.CONVERGE),
                (b, at(0.5), Phase.CONVERGE),
                (c, at(0.52), Phase.CONVERGE),  # within SPREAD of `b`: one pass for both
                (d, at(0.6), Phase.STEADY),  # seen already: no look
            ):
                await s.execute(
                    update(Server)
                    .where(Server.id == sid)
                    .values(cloud="private", phase=phase, remote_recorded_at=recorded)
                )
        looks = [0.9, 1.0]
        unasked = at(0.6)  # the boot time became known after all three were recorded
        # A pass at 0.95 s: `a`'s first look (0.9 s) is past, its last (1.0 s) ahead;
        # `b` and `c`'s both ahead, at the later's.
        assert await looks_after_pass(p.db, "private", at(0.95), looks, unasked) == [
            at(1.0),
            at(1.42),
            at(1.52),
        ]
        # A pass at 1.2 s: `a`'s last look is 0.2 s past (looked for again AGAIN[2] after
        # it), `b` and `c`'s are ahead.
        assert await looks_after_pass(p.db, "private", at(1.2), looks, unasked) == [
            at(1.0 + AGAIN[2]),
            at(1.42),
            at(1.52),
        ]
        # Long after: nothing ahead, nothing left to look again for.
        assert await looks_after_pass(p.db, "private", at(5.0), looks, unasked) == []
        # Creates recorded while the boot time was known asked for their looks then: not
        # asked again (from a newer estimate they would be passes of their own).
        assert await looks_after_pass(p.db, "private", at(0.95), looks, None) == []
        assert await looks_after_pass(p.db, "private", at(1.2), looks, None) == [at(1.0 + AGAIN[2])]
        # Asking again what is asked already adds no pass.
        asks = SyncAsks()
        for _ in range(2):
            for t in await looks_after_pass(p.db, "private", at(0.95), looks, unasked):
                asks.ask("private", t)
        assert asks.heads() == [at(1.0)]
        asks.served("private", at(1.0))
        assert asks.heads() == [at(1.42)]
    finally:
        await p.close()


async def test_a_worker_remembers_when_it_first_had_looks_for_a_cloud(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=cloud(1.0))
    try:
        boots = p.rt.boots
        assert await boots.looks(p.db, "private", at=at(1)) == []
        assert boots.known_since("private") is None  # no looks yet: creates ask for none
        boots.observe("private", 1.0)
        assert await boots.looks(p.db, "private", at=at(2))
        await boots.looks(p.db, "private", at=at(3))
        assert boots.known_since("private") == at(2)
    finally:
        await p.close()
