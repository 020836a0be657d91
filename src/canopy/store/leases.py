"""Claim rows with a lease (`claimed_by`, `claim_expires_at`) so many workers share the work.

On PostgreSQL the candidate rows are read `FOR UPDATE SKIP LOCKED`, so two workers never
take the same row; on SQLite there is one writer at a time, so the read-then-update is
already exclusive. A worker that dies simply stops renewing: after expiry, another takes over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.models import Job, Server


def unleased(now: datetime) -> ColumnElement[bool]:
    return or_(Server.claimed_by.is_(None), Server.claim_expires_at < now)


def due(now: datetime) -> ColumnElement[bool]:
    """Rows whose next attempt (after a backoff or a wait for capacity) may run now."""
    return or_(Server.next_attempt_at.is_(None), Server.next_attempt_at <= now)


async def lease_servers(
    s: AsyncSession,
    *,
    where: Sequence[ColumnElement[bool]],
    worker: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
) -> list[Server]:
    """Take up to `limit` due, unleased server rows matching `where`; return them leased."""
    q = (
        select(Server)
        .where(*where, due(now), unleased(now))
        .order_by(Server.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list((await s.execute(q)).scalars())
    if rows:
        until = now + timedelta(seconds=lease_seconds)
        await s.execute(
            update(Server)
            .where(Server.id.in_([r.id for r in rows]))
            .values(claimed_by=worker, claim_expires_at=until)
        )
        for r in rows:
            r.claimed_by, r.claim_expires_at = worker, until
    return rows


async def lease_job(
    s: AsyncSession, *, name: str, worker: str, now: datetime, lease_seconds: float
) -> Job | None:
    """Take the periodic job `name` if it is due and nobody holds it; create it if new."""
    # Create it if new without racing another worker doing the same (no error, no wait).
    dialect = s.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await s.execute(
        insert(Job).values(name=name, runs=0).on_conflict_do_nothing(index_elements=["name"])
    )
    job = (
        await s.execute(
            select(Job)
            .where(Job.name == name)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if job is None:  # locked by another worker right now
        return None
    held = job.claimed_by is not None and job.claim_expires_at and job.claim_expires_at > now
    if held and job.claimed_by != worker:
        return None
    if job.next_run_at is not None and job.next_run_at > now:
        return None
    job.claimed_by = worker
    job.claim_expires_at = now + timedelta(seconds=lease_seconds)
    return job
