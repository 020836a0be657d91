"""The sim's listings: its servers page by page, in the order they were created.

Each page is a range of the `servers` table's sequence numbers (its primary key), so a
page costs the same at the first server and the last, and a server keeps its place in the
order while it exists: a listing that spans pages shows it on one of them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from canopy.domain.specs import RemoteServer
from canopy.providers.base import ListPage
from canopy.providers.sim.state import _COLUMNS, _row
from canopy.providers.sim.status import ServerRow, to_remote


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
    where = ["seq > :after"]
    if tagged_only:
        where.append("canopy_id IS NOT NULL")
    if not include_deleted:
        where.append("deleted_at IS NULL")
    q = f"SELECT {_COLUMNS} FROM servers WHERE {' AND '.join(where)} ORDER BY seq LIMIT :n"
    for r in conn.execute(q, {"after": after, "n": limit}):
        yield _row(r)


def changed(
    conn: sqlite3.Connection,
    since_us: int,
    now_us: int,
    tagged_only: bool = True,
    after: int = 0,
    limit: int = -1,
) -> list[ServerRow]:
    """Servers (tagged ones only, unless told) whose change time (status.changed_at) is
    at or after `since_us`: the first `limit` (-1: all) past sequence number `after`."""
    # The same formula as status.changed_at, written as a union of three ranges so
    # each arm is a range of its own index: max(a, b, c) >= x exactly when one of them
    # is. (Written as ORs beside the tag test, SQLite scanned every server instead.)
    tagged = " AND canopy_id IS NOT NULL" if tagged_only else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM servers WHERE seq IN ("
        " SELECT seq FROM servers WHERE updated_at >= :since"
        " UNION SELECT seq FROM servers WHERE ready_at >= :since AND ready_at <= :now"
        "  AND deleted_at IS NULL"
        " UNION SELECT seq FROM servers WHERE transition_until >= :since"
        "  AND transition_until <= :now AND deleted_at IS NULL)"
        f"{tagged} AND seq > :after ORDER BY seq LIMIT :n",
        {"since": since_us, "now": now_us, "after": after, "n": limit},
    ).fetchall()
    return [_row(r) for r in rows]


def page(
    conn: sqlite3.Connection,
    since_us: int | None,
    now_us: int,
    tagged_only: bool,
    marker: str | None,
    limit: int,
) -> ListPage:
    """One page of the listing: all live servers (`since_us` None) or those changed since,
    the first `limit` after the marker (the sequence number of the last one listed)."""
    after = int(marker) if marker else 0
    limit = max(1, limit)
    if since_us is None:
        rows: Iterator[ServerRow] = each_server(
            conn, tagged_only=tagged_only, include_deleted=False, after=after, limit=limit
        )
    else:
        rows = iter(changed(conn, since_us, now_us, tagged_only, after, limit))
    # Each row is converted as it is read: a list of rows beside the list of servers held
    # every server twice over (RSS of `canopy up`, bench/memory.py).
    servers: list[RemoteServer] = []
    last = after
    for row in rows:
        servers.append(to_remote(row, now_us))
        last = row.seq
    return ListPage(servers, str(last) if len(servers) >= limit else None)
