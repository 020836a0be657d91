"""The sim's listings: its servers page by page, in the order they were created.

Each page is a range of the `servers` table's sequence numbers (its primary key), so a
page costs the same at the first server and the last, and a server keeps its place in the
order while it exists: a listing that spans pages shows it on one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator

from canopy.domain.specs import RemoteServer
from canopy.providers.base import ListPage
from canopy.providers.sim.state import _COLUMNS, SimStore, _row
from canopy.providers.sim.status import ServerRow, to_remote

# Servers read and turned into objects between two yields of the event loop: 10-16 us
# each on a slow 2-core machine, so a chunk holds the loop for about 0.15 ms (the
# statement itself is begun off the loop: `_begun`). During a full listing of 100,000 a
# timer on the loop fired late by 0.78 ms at the median with 10, 1.74 ms with 25 and
# about 5 ms with 100; the listing took 3% longer with 10 than with 25
# (bench/gil_convoy.py).
CHUNK = 10


def servers(
    conn: sqlite3.Connection, *, tagged_only: bool, include_deleted: bool
) -> list[ServerRow]:
    """All servers, oldest first, narrowed to tagged and/or live ones."""
    return list(each_server(conn, tagged_only=tagged_only, include_deleted=include_deleted))


def each_server(
    conn: sqlite3.Connection,
    *,
    tagged_only: bool,
    include_deleted: bool,
    after: int = 0,
    limit: int = -1,
) -> Iterator[ServerRow]:
    """`servers`, one at a time from the cursor: a caller that converts each one holds
    one row at a time instead of every row of a big cloud twice over. A page of them:
    the first `limit` (-1: all) past sequence number `after`."""
    for r in conn.execute(_every(tagged_only, include_deleted), {"after": after, "n": limit}):
        yield _row(r)


def _every(tagged_only: bool, include_deleted: bool) -> str:
    where = ["seq > :after"]
    if tagged_only:
        where.append("canopy_id IS NOT NULL")
    if not include_deleted:
        where.append("deleted_at IS NULL")
    return f"SELECT {_COLUMNS} FROM servers WHERE {' AND '.join(where)} ORDER BY seq LIMIT :n"


def _changed(tagged_only: bool) -> str:
    # The same formula as status.changed_at, written as a union of three ranges so
    # each arm is a range of its own index: max(a, b, c) >= x exactly when one of them
    # is. (Written as ORs beside the tag test, SQLite scanned every server instead.)
    tagged = " AND canopy_id IS NOT NULL" if tagged_only else ""
    return (
        f"SELECT {_COLUMNS} FROM servers WHERE seq IN ("
        " SELECT seq FROM servers WHERE updated_at >= :since"
        " UNION SELECT seq FROM servers WHERE ready_at >= :since AND ready_at <= :now"
        "  AND deleted_at IS NULL"
        " UNION SELECT seq FROM servers WHERE transition_until >= :since"
        "  AND transition_until <= :now AND deleted_at IS NULL)"
        f"{tagged} AND seq > :after ORDER BY seq LIMIT :n"
    )


async def page(
    store: SimStore,
    since_us: int | None,
    now_us: int,
    tagged_only: bool,
    marker: str | None,
    limit: int,
) -> ListPage:
    """One page of the listing: all live servers (`since_us` None) or those changed since,
    the first `limit` after the marker (the sequence number of the last one listed).

    The statement is begun in a worker thread (`_begun`), then its rows are read on the
    caller's thread, CHUNK servers at a time, the event loop given back between chunks;
    the statement stays open across them, so the page is one snapshot, as a real cloud's
    answer is. The rows are not turned into objects in a worker thread: a thread running
    Python beside the loop makes every call that lets the GIL go on the loop (each row
    SQLite steps, each send) wait for that thread's next switch, and the two slow each
    other down in turn (docs/architecture.md, "A thread computing beside the loop").
    """
    after = int(marker) if marker else 0
    limit = max(1, limit)
    values = {"after": after, "n": limit}
    if since_us is None:
        sql = _every(tagged_only, include_deleted=False)
    else:
        sql, values = _changed(tagged_only), {**values, "since": since_us, "now": now_us}
    # Each row is converted as it is read: a list of rows beside the list of servers held
    # every server twice over (RSS of `canopy up`, bench/memory.py).
    servers: list[RemoteServer] = []
    last = after
    with store.borrowed() as conn:
        cursor = await _begun(conn, sql, values)
        try:
            while True:
                chunk = cursor.fetchmany(CHUNK)
                for raw in chunk:
                    row = _row(raw)
                    servers.append(to_remote(row, now_us))
                    last = row.seq
                if len(chunk) < CHUNK:
                    break
                await asyncio.sleep(0)
        finally:
            cursor.close()
    return ListPage(servers, str(last) if len(servers) >= limit else None)


async def _begun(conn: sqlite3.Connection, sql: str, values: dict[str, int]) -> sqlite3.Cursor:
    """`sql` executed in a worker thread: its first step is where SQLite does a query's
    work when the query gathers before it returns a row (changes-since's union of three
    ranges: 70-90 ms with 100,000 changed servers, every page). The thread runs almost no
    Python (SQLite lets the GIL go while it works), so it computes nothing beside the loop.

    Cancelled while the thread runs, it waits for the thread to be done with the
    connection (which goes back to the pool after), closes what it began, and is
    cancelled then.
    """
    job = asyncio.ensure_future(asyncio.to_thread(conn.execute, sql, values))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        while not job.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({job})
        if not job.cancelled() and job.exception() is None:
            job.result().close()
        raise
