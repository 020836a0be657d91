"""A sync pass's results, recorded: the job's next run and cursor, the cloud's health.

Every cloud's pass ends with this write transaction, every interval even at rest (20
clouds: ten a second). It is two UPDATEs built once, with the values bound, and the
converging probe (controllers/listing.py), run on the session's connection: no entity is
loaded, no unit of work flushed. The job's UPDATE is also the check that this worker
still holds it (`claimed_by` in its WHERE, the row returned): a pass's results are
recorded only by the job's holder, and another worker's lease rolls the whole
transaction back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.fencing import LeaseLost
from canopy.controllers.listing import CONVERGING
from canopy.store.models import Cloud, Job


def _job_update(release: bool) -> Any:
    values: dict[str, Any] = {
        "runs": Job.runs + 1,
        "cursor": bindparam("new_cursor", type_=Job.cursor.type),
        "last_run_at": bindparam("ran_at", type_=Job.last_run_at.type),
        "last_error": None,
        "next_run_at": bindparam("next_at", type_=Job.next_run_at.type),
    }
    if release:  # else kept for the deletes of the leaks, then released
        values |= {"claimed_by": None, "claim_expires_at": None}
    return (
        update(Job)
        .where(Job.name == bindparam("job_name"), Job.claimed_by == bindparam("holder"))
        .values(values)
        .returning(Job.name)
        .execution_options(synchronize_session=False)
    )


_JOB = {release: _job_update(release) for release in (True, False)}


def _cloud_update(zones: bool) -> Any:
    values: dict[str, Any] = {
        "healthy": True,
        "health_message": "",
        "consecutive_failures": 0,
        "last_ok_at": bindparam("ok_at", type_=Cloud.last_ok_at.type),
        "abilities": bindparam("lacking", type_=Cloud.abilities.type),
    }
    if zones:  # a healing pass asked the cloud for them
        values |= {
            "zones": bindparam("listed_zones", type_=Cloud.zones.type),
            "zones_updated_at": bindparam("zones_at", type_=Cloud.zones_updated_at.type),
        }
    return (
        update(Cloud)
        .where(Cloud.name == bindparam("cloud_name"))
        .values(values)
        .execution_options(synchronize_session=False)
    )


_CLOUD = {zones: _cloud_update(zones) for zones in (True, False)}


@dataclass(frozen=True)
class Outcome:
    """What a pass that listed its cloud records."""

    job: str
    worker: str
    cloud: str
    cursor: datetime
    now: datetime
    zones: list[str] | None
    lacking: dict[str, str]
    release: bool  # no leak to delete: the job is let go with its results


async def record_pass(
    s: AsyncSession, o: Outcome, interval: tuple[float, float]
) -> tuple[datetime, float]:
    """Record `o` in `s`: (the job's next run, the interval to it). `interval` is (at rest,
    while something on the cloud converges). LeaseLost if another worker holds the job."""
    conn = await s.connection()  # Core statements: the ORM's UPDATE handling is not needed
    converging = (await conn.execute(CONVERGING, {"cloud": o.cloud})).first() is not None
    seconds = min(interval) if converging else interval[0]
    next_at = o.now + timedelta(seconds=seconds)
    held = (
        await conn.execute(
            _JOB[o.release],
            {
                "job_name": o.job,
                "holder": o.worker,
                "new_cursor": o.cursor,
                "ran_at": o.now,
                "next_at": next_at,
            },
        )
    ).first()
    if held is None:
        raise LeaseLost(f"job {o.job}: no longer held by {o.worker}")
    params: dict[str, Any] = {"cloud_name": o.cloud, "ok_at": o.now, "lacking": o.lacking}
    if o.zones is not None:
        params |= {"listed_zones": list(o.zones), "zones_at": o.now}
    await conn.execute(_CLOUD[o.zones is not None], params)
    return next_at, seconds
