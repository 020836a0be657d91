"""Leases on rows (`claimed_by`, `claim_expires_at`) so many workers share the work.

Any model with the `Leased` columns can be leased (`lease_rows`), renewed (`renew_leases`,
which is also the fence taken just before a cloud call) and released (`release_lease`).
On PostgreSQL the candidate rows are read `FOR UPDATE SKIP LOCKED`, so two workers never
take the same row; on SQLite there is one writer at a time, so the read-then-update is
already exclusive. A worker that dies simply stops renewing: after expiry, another takes over.

Lease expiry is compared against one clock, the *lease clock*. It is passed to each
statement as `now`: either a value (the process clock on SQLite, where every worker shares
one machine, and a test's FakeClock on either backend) or a SQL expression that the
database evaluates itself (`DatabaseClock`, PostgreSQL's `statement_timestamp()`), so
workers on machines whose clocks disagree still agree on when a lease runs out.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Interval,
    Table,
    and_,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.orm.attributes import set_committed_value

from canopy.store.models import Job, Leased, Retried, Server

L = TypeVar("L", bound=Leased)

# A moment on the lease clock: a value, or an expression the database evaluates.
When = datetime | ColumnElement[datetime]


class DatabaseClock:
    """The database's own clock, read by every statement that compares or sets a lease.

    `statement_timestamp()` is when the statement began, never later than the moment it
    runs: a lease it sets ends no later than the holder believes, and a lease it finds
    expired expired for certain.
    """

    def now(self) -> ColumnElement[datetime]:
        return func.statement_timestamp(type_=DateTime(timezone=True))


def key_column(model: type[Leased]) -> ColumnElement[Any]:
    """The model's primary key column (a leased table has a one-column key)."""
    pk = sa_inspect(model).primary_key
    if len(pk) != 1:
        raise TypeError(f"{model.__name__}: a leased table needs a one-column primary key")
    return cast(ColumnElement[Any], pk[0])


def row_key(row: Leased) -> Hashable:
    """The primary key of a loaded row (what holds and the in-flight set are keyed by)."""
    identity = sa_inspect(row).identity
    assert identity is not None
    return cast(Hashable, identity[0])


def after(now: When, seconds: float) -> When:
    """`now` plus `seconds`, as a value or as SQL, whichever `now` is."""
    if isinstance(now, datetime):
        return now + timedelta(seconds=seconds)
    return now + literal(timedelta(seconds=seconds), Interval())


def unleased(model: type[Leased], now: When) -> ColumnElement[bool]:
    """Rows nobody holds: never leased, released, or whose lease has run out."""
    return or_(model.claimed_by.is_(None), model.claim_expires_at < now)


def live(model: type[Leased], now: When) -> ColumnElement[bool]:
    """Rows some worker holds, with a lease that has not run out."""
    return and_(model.claimed_by.is_not(None), model.claim_expires_at > now)


def held_by(model: type[Leased], worker: str, now: When) -> ColumnElement[bool]:
    """Rows whose lease `worker` holds and that has not run out."""
    return and_(model.claimed_by == worker, model.claim_expires_at > now)


def due(model: type[Retried], now: datetime) -> ColumnElement[bool]:
    """Rows whose next attempt (after a backoff or a wait for capacity) may run now."""
    return or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now)


async def lease_rows(
    s: AsyncSession,
    model: type[L],
    *,
    where: Sequence[ColumnElement[bool]],
    worker: str,
    now: When,
    lease_seconds: float,
    limit: int,
    order_by: Sequence[ColumnElement[Any] | QueryableAttribute[Any]] = (),
    exclude: Collection[Hashable] = (),
) -> list[L]:
    """Take up to `limit` unleased rows of `model` matching `where`; return them leased.

    `exclude` names rows this worker must not take although their lease ran out: the ones
    it is still working on (its in-flight set). The rows come back with their new lease.
    """
    key = key_column(model)
    conds = [*where, unleased(model, now)]
    if exclude:
        conds.append(key.not_in(list(exclude)))
    q = (
        select(model)
        .where(*conds)
        .order_by(*order_by, key)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list((await s.execute(q)).scalars())
    if rows:
        by_key = {row_key(r): r for r in rows}
        result = await s.execute(
            update(model)
            .where(key.in_(list(by_key)))
            .values(claimed_by=worker, claim_expires_at=after(now, lease_seconds))
            .returning(key, model.claim_expires_at)
            .execution_options(synchronize_session=False)
        )
        for k, until in result:
            set_committed_value(by_key[k], "claimed_by", worker)
            set_committed_value(by_key[k], "claim_expires_at", until)
    return rows


async def lease_servers(
    s: AsyncSession,
    *,
    where: Sequence[ColumnElement[bool]],
    worker: str,
    now: When,
    lease_seconds: float,
    limit: int,
    due_at: datetime | None = None,
    exclude: Collection[Hashable] = (),
) -> list[Server]:
    """Take up to `limit` due, unleased server rows matching `where`, oldest first.

    `due_at` is the controllers' own time for `next_attempt_at` (defaults to `now`, which
    must then be a value).
    """
    if due_at is None:
        assert isinstance(now, datetime), "due_at is needed when now is a SQL expression"
        due_at = now
    return await lease_rows(
        s,
        Server,
        where=[*where, due(Server, due_at)],
        worker=worker,
        now=now,
        lease_seconds=lease_seconds,
        limit=limit,
        order_by=[Server.created_at],
        exclude=exclude,
    )


async def renew_leases(
    s: AsyncSession,
    model: type[Leased],
    keys: Collection[Hashable],
    *,
    worker: str,
    now: When,
    lease_seconds: float,
) -> set[Hashable]:
    """Extend `worker`'s unexpired leases on `keys`; return the keys it still holds.

    This is the fence: a key missing from the answer was taken by another worker or ran
    out, and its holder must stop (no cloud call, no result recorded). One statement for
    any number of rows.
    """
    if not keys:
        return set()
    # A Core statement on the table: it runs before most cloud calls, so it is kept lean
    # (no ORM objects are involved, none need updating).
    table = cast(Table, sa_inspect(model).local_table)
    key = key_column(model)
    result = await s.execute(
        update(table)
        .where(
            key.in_(list(keys)),
            table.c.claimed_by == worker,
            table.c.claim_expires_at > now,
        )
        .values(claim_expires_at=after(now, lease_seconds))
        .returning(key)
    )
    return {k for (k,) in result}


async def release_lease(s: AsyncSession, model: type[Leased], key: Hashable, worker: str) -> None:
    """Let go of `worker`'s lease on one row (a lease someone else holds is left alone)."""
    await s.execute(
        update(model)
        .where(key_column(model) == key, model.claimed_by == worker)
        .values(claimed_by=None, claim_expires_at=None)
        .execution_options(synchronize_session=False)
    )


async def lease_job(
    s: AsyncSession,
    *,
    name: str,
    worker: str,
    now: datetime,
    lease_seconds: float,
    lease_now: When | None = None,
    force: bool = False,
) -> Job | None:
    """Take the periodic job `name` if it is due and nobody holds it; create it if new.

    `now` is the controllers' time (for `next_run_at`); `lease_now` the lease clock's
    (defaults to `now`). `force` takes the job even if it is not due yet, but still never
    from another worker that holds it.
    """
    at = now if lease_now is None else lease_now
    q = (
        select(Job, live(Job, at).label("held"))
        .where(Job.name == name)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    found = (await s.execute(q)).one_or_none()
    if found is None:
        if (await s.execute(select(Job.name).where(Job.name == name))).first() is not None:
            return None  # locked by another worker right now
        # New: create it without racing another worker doing the same (no error). Only
        # now, as an insert meeting a row another transaction is updating waits for it.
        dialect = s.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await s.execute(
            insert(Job).values(name=name, runs=0).on_conflict_do_nothing(index_elements=["name"])
        )
        found = (await s.execute(q)).one_or_none()
        if found is None:
            return None
    job, held = found
    if held and job.claimed_by != worker:
        return None
    if not force and job.next_run_at is not None and job.next_run_at > now:
        return None
    conn = await s.connection()  # a Core UPDATE: the entity is set below, not synchronised
    [until] = (
        await conn.execute(
            update(Job)
            .where(Job.name == name)
            .values(claimed_by=worker, claim_expires_at=after(at, lease_seconds))
            .returning(Job.claim_expires_at)
            .execution_options(synchronize_session=False)
        )
    ).one()
    set_committed_value(job, "claimed_by", worker)
    set_committed_value(job, "claim_expires_at", until)
    return job
