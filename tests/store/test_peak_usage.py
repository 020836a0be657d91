"""`peak_usage`: the most capacity in use at any moment of [start, end), from the claims.

Checked against a brute force over every minute on SQLite and PostgreSQL, and the plan
of the query read from each backend's EXPLAIN. The sweep starts from the clouds' counters
(the sums of the counted claims) and corrects them by the claims whose `counted` is not
"in use at the window's start" (store/claim_sweep.py): so each claim's `counted` is drawn
freely (a lease step that has not run yet), and the counters hold the counted ones' sums.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.clock import FakeClock
from canopy.store.claims import (
    Usage,
    clouds_with_later_claims,
    peak_usage,
    peak_usage_query,
    peaks_by_cloud,
    peaks_by_cloud_query,
    usage_at,
)
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLOUDS = ("a", "b")
HORIZON = 60  # minutes; every claim starts and ends on a whole minute inside it


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


@dataclass(frozen=True)
class C:
    cloud: str
    start: int
    end: int | None  # None: open-ended
    vcpus: int
    ram_mb: int
    instances: int
    micros: int
    counted: bool = False

    def row(self, i: int) -> dict[str, Any]:
        return {
            "reservation_id": f"r-{i}",
            "cloud": self.cloud,
            "vcpus": self.vcpus,
            "ram_mb": self.ram_mb,
            "disk_gb": 0,
            "instances": self.instances,
            "price_per_hour_micros": self.micros,
            "starts_at": at(self.start),
            "ends_at": None if self.end is None else at(self.end),
            "created_at": T0,
            "counted": self.counted,
        }


@st.composite
def claims(draw: st.DrawFn) -> C:
    start = draw(st.integers(0, HORIZON - 1))
    end = draw(st.one_of(st.none(), st.integers(start + 1, HORIZON)))
    return C(
        cloud=draw(st.sampled_from(CLOUDS)),
        start=start,
        end=end,
        vcpus=draw(st.integers(0, 16)),
        ram_mb=draw(st.integers(0, 4096)),
        instances=draw(st.integers(0, 2)),
        micros=draw(st.integers(0, 5_000_000)),
        counted=draw(st.booleans()),
    )


def brute_force(cs: list[C], clouds: tuple[str, ...], start: int, end: int | None) -> Usage:
    """Usage at every whole minute of the window (usage only changes on whole minutes)."""
    last = HORIZON + 1 if end is None else end
    best = [0, 0, 0, 0]
    for t in range(start, last):
        live = [
            c for c in cs if c.cloud in clouds and c.start <= t and (c.end is None or t < c.end)
        ]
        sums = [
            sum(c.vcpus for c in live),
            sum(c.ram_mb for c in live),
            sum(c.instances for c in live),
            sum(c.micros for c in live),
        ]
        best = [max(b, x) for b, x in zip(best, sums, strict=True)]
    return Usage(*best)


async def _ensure_clouds(s: AsyncSession, cs: list[C] = []) -> None:  # noqa: B006
    """Clouds `CLOUDS`, their counters the sums of the counted claims of `cs`."""
    for name in CLOUDS:
        held = [c for c in cs if c.cloud == name and c.counted]
        counters = {
            "vcpus_claimed": sum(c.vcpus for c in held),
            "ram_mb_claimed": sum(c.ram_mb for c in held),
            "instances_claimed": sum(c.instances for c in held),
            "spend_per_hour_micros": sum(c.micros for c in held),
        }
        cloud = await s.get(Cloud, name)
        if cloud is None:
            s.add(Cloud(name=name, driver="sim", tier=1, **counters))
        else:
            for k, v in counters.items():
                setattr(cloud, k, v)


async def _check(
    url: str, cs: list[C], clouds: tuple[str, ...], start: int, end: int | None
) -> None:
    db = Database(url)
    try:
        async with db.session() as s:
            await s.execute(delete(Claim))
            await _ensure_clouds(s, cs)
            await s.flush()
            if cs:
                await s.execute(insert(Claim), [c.row(i) for i, c in enumerate(cs)])
        async with db.read() as s:
            got = await peak_usage(s, list(clouds), at(start), None if end is None else at(end))
            now = await usage_at(s, list(CLOUDS), at(start))
            each = await peaks_by_cloud(
                s, list(clouds), at(start), None if end is None else at(end)
            )
        assert got == brute_force(cs, clouds, start, end), (cs, clouds, start, end)
        # The one-statement sweep per cloud gives each cloud's own peak.
        assert each == {n: brute_force(cs, (n,), start, end) for n in clouds}, (cs, start, end)
        for name in CLOUDS:
            assert now[name] == brute_force(cs, (name,), start, start + 1)
    finally:
        await db.dispose()


@st.composite
def windows(draw: st.DrawFn) -> tuple[tuple[str, ...], int, int | None]:
    clouds = draw(st.sampled_from([("a",), ("b",), ("a", "b")]))
    start = draw(st.integers(0, HORIZON))
    end = draw(st.one_of(st.none(), st.integers(start + 1, HORIZON + 5)))
    return clouds, start, end


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cs=st.lists(claims(), max_size=25), window=windows())
def test_peak_usage_matches_a_brute_force(
    db_url: str, cs: list[C], window: tuple[tuple[str, ...], int, int | None]
) -> None:
    clouds, start, end = window
    asyncio.run(_check(db_url, cs, clouds, start, end))


async def test_touching_windows_do_not_overlap(db: Database) -> None:
    """[0, 10) and [10, 20) never hold capacity at the same moment; [0, 11) does."""
    cs = [C("a", 0, 10, 4, 0, 1, 0), C("a", 10, 20, 4, 0, 1, 0), C("a", 5, 11, 1, 0, 1, 0)]
    async with db.session() as s:
        await _ensure_clouds(s, cs)
        await s.flush()
        await s.execute(insert(Claim), [c.row(i) for i, c in enumerate(cs)])
    async with db.read() as s:
        assert (await peak_usage(s, ["a"], at(0), at(20))).vcpus == 5
        assert (await peak_usage(s, ["a"], at(11), at(20))).vcpus == 4
        assert (await peak_usage(s, ["a"], at(20))).vcpus == 0
        assert await peak_usage(s, ["b"], at(0)) == Usage()
        assert await peak_usage(s, [], at(0)) == Usage()
        assert await clouds_with_later_claims(s, at(5)) == {"a"}
        assert await clouds_with_later_claims(s, at(10)) == set()


async def _plan(s: AsyncSession, sql: str) -> str:
    dialect = s.get_bind().dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    rows = await s.execute(text(prefix + sql))
    return "\n".join(" ".join(str(v) for v in r) for r in rows)


async def test_the_peak_query_reads_the_window_index(db: Database) -> None:
    """With 40 clouds of 200 claims each (statistics gathered), both planners answer for
    one cloud through the claims' indexes (starts, ends, the uncounted), and never scan
    the whole table."""
    clock = FakeClock(T0)
    async with db.session() as s:
        for i in range(40):
            s.add(
                Cloud(
                    name=f"c{i:02d}",
                    driver="sim",
                    tier=1,
                    vcpus_claimed=0,
                    ram_mb_claimed=0,
                    instances_claimed=0,
                    spend_per_hour_micros=0,
                )
            )
        await s.flush()
        # Two of three open-ended and counted, as servers' claims are; a third ending.
        rows = [
            C(
                f"c{i:02d}", j % HORIZON, None if j % 3 else j % HORIZON + 5, 1, 1, 1, 1, j % 3 > 0
            ).row(i * 1000 + j)
            for i in range(40)
            for j in range(200)
        ]
        await s.execute(insert(Claim), rows)
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    async with db.read() as s:
        dialect = s.get_bind().dialect
        # Late in the hour: most claims began before the window, as a fleet's servers have.
        clock.advance(55 * 60)
        q = peak_usage_query(["c07"], clock.now(), clock.now() + timedelta(minutes=30))
        sql = str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        plan = await _plan(s, sql)
        for index in ("ix_claims_cloud_window", "ix_claims_cloud_ends", "ix_claims_uncounted"):
            assert index in plan, plan
        if dialect.name == "sqlite":
            assert "SCAN claims" not in plan, plan
        else:
            assert "Seq Scan on claims" not in plan, plan
        # The sweep per cloud, for a few clouds in one statement: the same index, per cloud.
        q = peaks_by_cloud_query(
            ["c03", "c07", "c21"], clock.now(), clock.now() + timedelta(minutes=30)
        )
        sql = str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        plan = await _plan(s, sql)
        assert "ix_claims_cloud_window" in plan, plan
        if dialect.name == "sqlite":
            assert "SCAN claims" not in plan, plan
        else:
            assert "Seq Scan on claims" not in plan, plan
        later = await _plan(
            s,
            "SELECT clouds.name FROM clouds WHERE EXISTS (SELECT 1 FROM claims WHERE "
            "claims.cloud = clouds.name AND claims.starts_at > "
            f"'{clock.now().replace(tzinfo=None).isoformat(sep=' ')}')",
        )
        assert "ix_claims_cloud_window" in later, later
