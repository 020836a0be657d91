"""Placement's servers as plain rows: the batch read as the columns placement reads, and
the placed ones written by one UPDATE built once, run once for the whole batch.

A batch read as ORM entities (every column of each, its JSON decoded, its times made
aware) and written back by the unit of work (each attribute set tracked, each row's
changes collected at flush) cost placement about as much CPU as the scheduler itself.
The servers placement places need none of it: a placed server's new values are the same
few columns for all of them, and its placement, claim and event rows are Core INSERTs
on the same connection. A server that is not placed (it waits for capacity, or fails) is
rare and changes more: the batch's are loaded as entities after the loop, in one
statement, and written as before (`PlacementController._unplaced`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, select, update

from canopy.domain.states import Phase, TaskState
from canopy.store.leases import due
from canopy.store.models import Server
from canopy.store.plans import rare

# What placement reads of a waiting server (`_request`, reservations, server groups).
WAITING_COLUMNS = (
    Server.id,
    Server.flavor_id,
    Server.image_id,
    Server.requested_zone,
    Server.group_id,
    Server.reservation_id,
    Server.reserved_host_id,
    Server.attempts,
    Server.attempt_log,
)


def waiting(now: datetime, limit: int) -> Select[Any]:
    """The next batch of servers waiting to be placed, oldest first, locked (PostgreSQL:
    skipping rows another worker's batch holds)."""
    return (
        select(*WAITING_COLUMNS)
        .where(rare(Server.phase == Phase.SCHEDULE), due(Server, now))
        .order_by(Server.created_at, Server.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


_TABLE = cast(Table, Server.__table__)
_SERVERS = _TABLE.c
# A placed server: on its cloud (and zone), to be created. One statement for the batch,
# its rows' values bound (an executemany).
PLACED = (
    update(_TABLE)
    .where(_SERVERS.id == bindparam("placed_id"))
    .values(
        attempts=bindparam("placed_attempt", type_=_SERVERS.attempts.type),
        cloud=bindparam("placed_cloud", type_=_SERVERS.cloud.type),
        zone=bindparam("placed_zone", type_=_SERVERS.zone.type),
        reserved_host_id=bindparam("placed_host", type_=_SERVERS.reserved_host_id.type),
        updated_at=bindparam("placed_at", type_=_SERVERS.updated_at.type),
        phase=Phase.CREATE,
        task_state=TaskState.SPAWNING,
        next_attempt_at=None,
        schedule_deadline=None,
        retries=0,
    )
)


def placed(
    row: Row[Any], cloud: str | None, zone: str | None, host: int | None, now: datetime
) -> dict[str, Any]:
    """`PLACED`'s values for one server: its next attempt, where it goes, and the
    reservation host it takes (`host`; its own otherwise)."""
    return {
        "placed_id": row.id,
        "placed_attempt": row.attempts + 1,
        "placed_cloud": cloud,
        "placed_zone": zone,
        "placed_host": row.reserved_host_id if host is None else host,
        "placed_at": now,
    }
