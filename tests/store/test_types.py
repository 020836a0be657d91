"""UTCDateTime: aware UTC in, aware UTC out, on both backends; naive datetimes refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import literal, select, type_coerce
from sqlalchemy.exc import StatementError

from canopy.store.db import Database
from canopy.store.models import Job, Project


async def test_round_trip_of_aware_datetimes(db: Database) -> None:
    utc = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    plus2 = datetime(2026, 3, 4, 9, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    async with db.session() as s:
        s.add(Job(name="a", runs=0, next_run_at=utc, last_run_at=plus2, claim_expires_at=None))
    async with db.read() as s:
        job = (await s.execute(select(Job).where(Job.name == "a"))).scalar_one()
    assert job.next_run_at == utc
    assert job.next_run_at is not None and job.next_run_at.utcoffset() == timedelta(0)
    assert job.next_run_at.microsecond == 890123
    # The same instant, normalised to UTC.
    assert job.last_run_at == datetime(2026, 3, 4, 7, 0, 0, tzinfo=UTC)
    assert job.last_run_at is not None and job.last_run_at.tzinfo is not None
    assert job.last_run_at.utcoffset() == timedelta(0)
    assert job.claim_expires_at is None


async def test_comparisons_in_sql_use_the_instant(db: Database) -> None:
    t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    async with db.session() as s:
        s.add(Job(name="early", runs=0, next_run_at=t))
        s.add(Job(name="late", runs=0, next_run_at=t + timedelta(seconds=1)))
    # 13:00 at +01:00 is 12:00 UTC: only "early" is due at that instant.
    at = datetime(2026, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))
    async with db.read() as s:
        due = (await s.execute(select(Job.name).where(Job.next_run_at <= at))).scalars().all()
    assert list(due) == ["early"]


async def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.session() as s:
            s.add(Project(id="p", name="p", created_at=datetime(2026, 1, 1)))
            await s.flush()
    async with db.read() as s:
        assert (await s.execute(select(Project))).first() is None  # nothing was written


async def test_naive_datetimes_are_refused_in_queries(db: Database) -> None:
    async with db.read() as s:
        with pytest.raises(StatementError, match="naive datetime"):
            await s.execute(select(Job).where(Job.next_run_at < datetime(2026, 1, 1)))


async def test_display_time_is_nova_s_raw_datetime_text(db: Database) -> None:
    from canopy.api.compute.common import perfect_time
    from canopy.store.types import DisplayTime

    times = [
        datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
        datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),  # no microseconds
        datetime(2026, 3, 4, 9, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    ]
    for i, t in enumerate(times):
        async with db.session() as s:
            s.add(Job(name=f"d{i}", runs=0, next_run_at=t, last_run_at=None))
        async with db.read() as s:
            shown, none = (
                await s.execute(
                    select(
                        type_coerce(Job.next_run_at, DisplayTime()),
                        type_coerce(Job.last_run_at, DisplayTime()),
                    ).where(Job.name == f"d{i}")
                )
            ).one()
        assert shown == perfect_time(t)
        assert none is None


async def test_fast_json_decodes_as_json_does(db: Database) -> None:
    import math

    from canopy.store.types import FastJSON

    async with db.read() as s:
        for raw, want in (
            ('{"net": [{"addr": "10.0.0.1", "version": 4}]}', None),
            ("{}", {}),
            ('"\\u00e9t\\u00e9"', "été"),
        ):
            got = (await s.execute(select(type_coerce(literal(raw), FastJSON())))).scalar()
            assert got == (json.loads(raw) if want is None else want)
        # Text orjson refuses is still decoded, as json.loads would.
        nan = (await s.execute(select(type_coerce(literal("[NaN]"), FastJSON())))).scalar()
        assert isinstance(nan, list) and math.isnan(nan[0])
