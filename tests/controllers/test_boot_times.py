"""Looking for a boot's end: sync learns each cloud's boot time from what it sees, and a
create recorded on a cloud whose boot time is known asks for passes around the moment its
boot should end, so a booted server is seen ACTIVE then, not a converging interval later."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from canopy.controllers.boot_times import ASKS, LATE, STEP, BootTimes, SyncAsks
from canopy.store.models import Server

from .harness import Plane, make_plane, statements

T0 = datetime(2026, 1, 1, tzinfo=UTC)

CLOUD = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
boot_seconds = 1
api_latency_ms = 0
"""

# At rest every 10 s, and every 5 s while something converges: slow enough that only the
# passes asked around a boot's end can see it within a fraction of a second.
SLOW = {"controllers": {"sync_seconds": 10.0, "sync_converging_seconds": 5.0}}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_asks_close_together_are_one_pass_and_a_pass_answers_every_ask_up_to_its_start() -> None:
    asks = SyncAsks()
    asks.ask("a", at(2.0))
    asks.ask("a", at(0.5))
    asks.ask("a", at(2.01))  # within SPREAD of 2.0: the same pass, at the later ask
    asks.ask("a", at(1.99))  # just before a pass asked already: that pass answers it
    asks.ask("b", at(1.0))
    assert sorted(asks.heads()) == [at(0.5), at(1.0)]
    assert not asks.due("a", at(0.4)) and asks.due("a", at(0.5))
    asks.served("a", at(0.7))
    assert sorted(asks.heads()) == [at(1.0), at(2.01)]
    assert not asks.due("a", at(2.0))
    asks.served("a", at(2.01))
    assert "a" not in asks and "b" in asks


async def test_looks_start_a_step_before_the_median_and_end_a_step_past_the_p95(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUD)
    try:
        boots = BootTimes()
        assert await boots.looks(p.db, "private") == []  # nothing to go by
        for _ in range(10):
            boots.observe("private", 2.0)
        # One look before the median, and one just past the p95 (the same 2 s here).
        assert await boots.looks(p.db, "private") == pytest.approx([2.0 - STEP, 2.0 + LATE])
        for s in (2.2, 2.4, 5.0):  # a slow tail: more looks, never more than ASKS
            boots.observe("private", s)
        looks = await boots.looks(p.db, "private")
        assert looks[0] == pytest.approx(2.0 - STEP) and len(looks) == ASKS
        assert looks[-1] == pytest.approx(5.0 + LATE)  # the last still past the p95
        for _ in range(30):  # a tail of 0.25 s past the median: looks a step apart or less
            boots.observe("private", 2.25)
        looks = await boots.looks(p.db, "private")
        gaps = [b - a for a, b in itertools.pairwise(looks)]
        assert looks[-1] >= 2.25 and max(gaps) <= STEP + LATE + 1e-9
        boots.observe("private", -1.0)  # a clock step backwards is no boot time
        assert min(boots.known("private")) == 2.0
    finally:
        await p.close()


def test_a_boot_is_learned_as_the_middle_of_the_span_it_ended_in() -> None:
    boots = BootTimes()
    # Recorded at 0; the pass at 3 s saw it running; the one before, at 2.8 s, had not.
    boots.booted("a", at(0), at(3.0), at(2.8))
    assert boots.known("a") == [pytest.approx(2.9)]
    # A pass before the record says nothing: the span starts at the record.
    boots.booted("b", at(10), at(11.0), at(9.0))
    assert boots.known("b") == [pytest.approx(0.5)]
    boots.booted("c", at(5), at(4.0), None)  # adopted by that pass: recorded after it
    boots.booted("c", None, at(4.0), None)
    assert boots.known("c") == []


def test_the_clouds_own_times_narrow_the_span_to_the_create_call() -> None:
    boots = BootTimes()
    # The passes say: ended between 2 s and 3 s after the record. The cloud says it took
    # 2.3 s from its creation, made during the call (0.1 s, ending at the record): so it
    # ended between 2.2 s and 2.3 s after the record; by 2.3 s at the latest, the sample.
    boots.booted("a", at(0), at(3.0), at(2.0), requested=at(-0.1), cloud_took=2.3)
    assert boots.known("a") == [pytest.approx(2.3)]
    # Times that cannot be (a later change moved the cloud's updated_at): the passes' span.
    boots.booted("b", at(0), at(3.0), at(2.0), requested=at(-0.1), cloud_took=5.0)
    boots.booted("b", at(0), at(3.0), at(2.0), requested=None, cloud_took=2.3)
    assert boots.known("b") == [pytest.approx(2.5), pytest.approx(2.5)]


async def _until_active(p: Plane, sid: str, step: float = 0.02, limit: float = 20.0) -> float:
    """Step the worker on the fake clock until `sid` is ACTIVE; the seconds it took."""
    t0 = p.clock.now()
    while (p.clock.now() - t0).total_seconds() < limit:
        if (await p.service.get(p.ctx, sid)).status == "ACTIVE":
            return (p.clock.now() - t0).total_seconds()
        await p.step(step)
    raise AssertionError(f"{sid} not ACTIVE after {limit}s")


async def test_a_booted_server_is_seen_active_at_its_expected_boot_end_not_an_interval_later(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUD, overrides=SLOW)
    try:
        await p.worker.sync.run_once(force=True)
        # What sync learned from this cloud's earlier boots (1 s from record to running).
        for _ in range(5):
            p.rt.boots.observe("private", 1.0)
        [sid] = await p.create(1)
        took = await _until_active(p, sid)
        # The boot (1 s), a step of the test's clock and a look's step at most: not the
        # 5 s converging interval.
        assert took <= 1.0 + 0.02 * 3 + STEP, took
    finally:
        await p.close()


async def test_with_no_boot_time_known_the_converging_interval_still_applies(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUD, overrides=SLOW)
    try:
        await p.worker.sync.run_once(force=True)
        [sid] = await p.create(1)
        took = await _until_active(p, sid, step=0.1)
        assert took >= 5.0, took  # seen by the pass a converging interval after the record
        # Learned: the passes say it ended between the record and that pass (5 s); the
        # cloud's own times say it took 1 s from its creation during the create call...
        assert p.rt.boots.known("private") == [pytest.approx(1.0, abs=0.1)]
        # ... so the next create on this cloud is looked for then, and seen by that look.
        [sid] = await p.create(1)
        assert await _until_active(p, sid, step=0.1) <= 1.0 + LATE + 0.1 + 0.1
    finally:
        await p.close()


async def test_a_worker_just_started_reads_the_clouds_recent_boots_once_in_one_bounded_read(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUD)
    try:
        ids = await p.create(3)
        async with p.db.session() as s:
            for i, sid in enumerate(ids):
                await s.execute(
                    update(Server)
                    .where(Server.id == sid)
                    .values(
                        cloud="private",
                        remote_recorded_at=at(10 * i),
                        launched_at=at(10 * i + 1.5 + i * 0.1),
                    )
                )
        boots = BootTimes()
        with statements(p.db) as seen:
            assert await boots.expected(p.db, "private") == pytest.approx((1.6, 1.7))
        assert sum(q.startswith("SELECT") for q in seen) == 1
        with statements(p.db) as seen:
            assert await boots.expected(p.db, "private") is not None
            assert await boots.expected(p.db, "elsewhere") is None
            assert await boots.expected(p.db, "elsewhere") is None
        # Each cloud's history is read once per worker: "elsewhere" once, "private" no more.
        assert sum(q.startswith("SELECT") for q in seen) == 1
    finally:
        await p.close()


def test_creates_recorded_one_after_another_ask_for_one_converging_pass() -> None:
    # Each recorded batch asks for a pass a converging interval on: one pass answers them
    # all (a pass per batch listed the cloud every few tens of milliseconds under a burst).
    asks = SyncAsks()
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    for i in range(20):  # a batch every 60 ms, each asking for a pass 0.5 s after it
        asks.ask_by("c", t0 + timedelta(seconds=0.06 * i + 0.5))
    assert asks.heads() == [t0 + timedelta(seconds=0.5)]
    asks.served("c", t0 + timedelta(seconds=0.5))
    assert "c" not in asks
    # A precise ask (a boot's expected end) is kept beside it.
    asks.ask_by("c", t0 + timedelta(seconds=2))
    asks.ask("c", t0 + timedelta(seconds=3))
    asks.ask_by("c", t0 + timedelta(seconds=2.5))  # the pass at 2 s answers it
    asks.served("c", t0 + timedelta(seconds=2))
    assert asks.heads() == [t0 + timedelta(seconds=3)]


async def test_a_sim_boot_is_learned_from_the_clouds_times_within_the_create_call(
    db_url: str, tmp_path: Path
) -> None:
    # Passes 5 s apart would teach "between the record and 5 s": the cloud's own times
    # (its creation, its updated_at at the boot's end) teach the 1 s boot itself.
    p = await make_plane(db_url, tmp_path, toml=CLOUD, overrides=SLOW)
    try:
        await p.worker.sync.run_once(force=True)
        [sid] = await p.create(1)
        await _until_active(p, sid, step=0.1)
        [learned] = p.rt.boots.known("private")
        assert 0.9 <= learned <= 1.0, learned
    finally:
        await p.close()
