"""Every statement the controllers send, and the plan the database makes of each.

`sweep` runs what a worker does at 100,000 servers, in small: worker steps (the fleet's
read of the clouds table, placement, provisioning, power, a forced full sync, the
notifications' fan-out and a webhook send), a housekeeping pass (the quota recount) and
captures each statement as sent. `sqlite_scans` asks SQLite's EXPLAIN QUERY PLAN of each
and returns the full scans of a big table (`BIG`) that `ALLOWED` does not name.

The big tables are seeded with Core inserts (`seed_bulk`), so that statistics made by
`ANALYZE` say what a large installation's would: nearly every server at rest, every
claim, event and delivery old.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, insert

from canopy.domain.states import Phase
from canopy.store.db import Database
from canopy.store.models import (
    Claim,
    Delivery,
    InstanceAction,
    InstanceActionEvent,
    OutboxEvent,
    Server,
    Stack,
    StackEvent,
    StackResource,
    StackSignal,
)
from tests.store.helpers import server_row

# The tables that grow with the fleet or with time (src/canopy/store/models/). A scan of
# one of them costs in proportion to the installation's size, on every pass.
BIG = frozenset(
    {
        "servers",
        "claims",
        "placements",
        "instance_actions",
        "instance_action_events",
        "outbox",
        "deliveries",
        "stacks",
        "stack_resources",
        "stack_events",
        "stack_signals",
        "server_tags",
    }
)


@dataclass(frozen=True)
class Allowed:
    """A scan of `table` by a statement containing `marker` (under the statistics named
    in `only`, if given), and why it is right."""

    table: str
    marker: str
    why: str
    only: frozenset[str] = frozenset()


# Each scan here is the work itself, bounded, or beyond what a plan can do.
ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "servers",
        "ORDER BY servers.updated_at DESC LIMIT ?",
        "The boot-time history (controllers/boot_times.py) walks the updated_at index "
        "from the newest row, LIMIT rows at most: bounded whatever the fleet's size.",
    ),
    *(
        Allowed(
            table,
            "SELECT stacks.id FROM stacks WHERE (unlikely(stacks.status = ?)",
            "Statistics made when the installation had 4 stacks and 20 signals say so: "
            "no hint outweighs a table of 4 rows (ANALYZE again, or PRAGMA optimize, "
            "which re-analyses a table grown 25-fold). With none or current ones, the "
            "status index and the partial index of unhandled signals are searched.",
            frozenset({"stale"}),
        )
        for table in ("stacks", "stack_signals")
    ),
    Allowed(
        "claims",
        "coalesce(sums.vcpus_claimed, ?)",
        "Housekeeping's drift repair of the clouds' counters (store/claim_counts.py) sums "
        "every counted claim on purpose, once per pass: a read of one snapshot along the "
        "(cloud, window) index, outside any write transaction; only a cloud that drifted "
        "is then written.",
    ),
)


def _partial_indexes() -> frozenset[str]:
    """Indexes of a few rows by construction (a WHERE): walking one reads no big table."""
    from canopy.store.models import Base

    return frozenset(
        ix.name
        for t in Base.metadata.tables.values()
        for ix in t.indexes
        if ix.name and ix.dialect_options["sqlite"]["where"] is not None
    )


PER_STACK = 5  # resources of each seeded stack

_SCAN = re.compile(r"^SCAN (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?")
_KINDS = ("SELECT", "UPDATE", "DELETE", "WITH", "INSERT")


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Any


@contextmanager
def captured(db: Database) -> Iterator[list[Statement]]:
    """Each distinct statement the database runs inside the block, with its first
    parameters (but INSERT ... VALUES, which reads nothing)."""
    seen: dict[str, Statement] = {}

    def record(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        head = sql.lstrip().upper()
        if not head.startswith(_KINDS) or sql in seen:
            return
        if head.startswith("INSERT") and " SELECT " not in head:
            return
        if many and params and isinstance(params[0], (list, tuple, dict)):
            params = params[0]
        seen[sql] = Statement(sql, params)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    out: list[Statement] = []
    try:
        yield out
    finally:
        event.remove(engine, "before_cursor_execute", record)
        out.extend(seen.values())


def _row(obj: Any) -> dict[str, Any]:
    """An ORM object's columns that are set, as a row for a Core insert."""
    keys = [c.key for c in type(obj).__mapper__.column_attrs]
    return {k: getattr(obj, k) for k in keys if getattr(obj, k) is not None}


async def seed_bulk(
    db: Database,
    *,
    project: str,
    now: datetime,
    n: int,
    clouds: tuple[str, ...],
    subscription: str | None = None,
    first: int = 0,
) -> None:
    """`n` steady servers spread over `clouds` (all on the first when it is one), each with
    its claim, an instance action and event, a resource of a complete stack (five a stack)
    with its event and a handled signal, an old outbox event (fanned out) and its
    delivered delivery: the rows of a big, quiet installation. `first` numbers the rows
    of a second call after the first's. Plain rows, Core inserts: ORM objects would cost
    seconds."""
    then = now - timedelta(days=1)
    one = _row(server_row(then, phase=Phase.STEADY, project_id=project, flavor_id="1"))
    one.update(status="ACTIVE")
    stack = {
        "project_id": project,
        "user_id": "u1",
        "template": {},
        "files": {},
        "environment": {},
        "parameters": {},
        "action": "CREATE",
        "status": "COMPLETE",
        "status_reason": "",
        "disable_rollback": True,
        "tags": [],
        "generation": 1,
        "action_started_at": then,
        "created_at": then,
        "deleted": False,
        "nested_depth": 0,
        "retries": 0,
    }
    stacks = [
        {**stack, "id": str(uuid.uuid4()), "name": f"big-{first + k}"}
        # Five resources a stack: 400 stacks for 2,000 servers, past the ~150 below which
        # SQLite (rightly) reads the whole stacks table rather than search two indexes.
        for k in range(max(1, n // PER_STACK))
    ]
    rows: dict[Any, list[dict[str, Any]]] = {
        m: [] for m in (Server, Claim, InstanceAction, InstanceActionEvent)
    }
    rows.update({m: [] for m in (StackResource, StackEvent, StackSignal, OutboxEvent, Delivery)})
    for i in range(first, first + n):
        cloud = clouds[i % len(clouds)]
        stack_id = stacks[(i - first) // PER_STACK % len(stacks)]["id"]
        sid = str(uuid.uuid4())
        rows[Server].append(
            {**one, "id": sid, "cloud": cloud, "remote_id": f"seeded-{i}", "host": f"h{i % 50}"}
        )
        rows[Claim].append(
            {
                "server_id": sid,
                "cloud": cloud,
                "vcpus": 1,
                "ram_mb": 512,
                "disk_gb": 1,
                "instances": 1,
                "price_per_hour_micros": 0,
                "starts_at": then,
                "created_at": then,
            }
        )
        rows[InstanceAction].append(
            {
                "id": i + 1_000_000,
                "server_id": sid,
                "request_id": "req",
                "action": "create",
                "project_id": project,
                "user_id": "u1",
                "start_time": then,
                "updated_at": then,
            }
        )
        rows[InstanceActionEvent].append(
            {
                "action_id": i + 1_000_000,
                "event": "compute__do_build_and_run_instance",
                "result": "Success",
                "start_time": then,
                "finish_time": then,
            }
        )
        resource = {"name": f"r{i}", "action": "CREATE", "status": "COMPLETE"}
        rows[StackResource].append(
            {
                **resource,
                "id": str(uuid.uuid4()),
                "stack_id": stack_id,
                "type": "OS::Nova::Server",
                "desired": "present",
                "generation": 1,
                "physical_resource_id": sid,
                "status_reason": "",
                "properties": {},
                "attributes": {},
                "requires": [],
                "data": {},
                "server_id": sid,
                "created_at": then,
                "updated_at": then,
            }
        )
        rows[StackEvent].append(
            {
                "id": str(uuid.uuid4()),
                "stack_id": stack_id,
                "resource_name": f"r{i}",
                "logical_resource_id": f"r{i}",
                "physical_resource_id": sid,
                "resource_type": "OS::Nova::Server",
                "action": "CREATE",
                "status": "COMPLETE",
                "status_reason": "",
                "time": then,
            }
        )
        rows[StackSignal].append(  # handled: kept, up to KEEP_HANDLED a stack
            {
                "id": str(uuid.uuid4()),
                "stack_id": stack_id,
                "resource_name": f"r{i}",
                "data": {},
                "via": "api",
                "received_at": then,
                "handled_at": then,
                "outcome": "done",
            }
        )
        rows[OutboxEvent].append(
            {
                "id": i + 1_000_000,
                "event_id": str(uuid.uuid4()),
                "event_type": "compute.instance.create.end",
                "subject": f"server/{sid}",
                "project_id": project,
                "payload": {},
                "created_at": then,
                "fanned_out": True,
            }
        )
        if subscription is not None:
            rows[Delivery].append(
                {
                    "subscription_id": subscription,
                    "outbox_id": i + 1_000_000,
                    "subject": f"server/{sid}",
                    "status": "delivered",
                    "retries": 1,
                    "delivered_at": then,
                    "created_at": then,
                    "updated_at": then,
                }
            )
    async with db.engine.begin() as conn:
        await conn.execute(insert(Stack.__table__), stacks)
        for model, batch in rows.items():
            if batch:
                await conn.execute(insert(model.__table__), batch)


def allowed(table: str, sql: str, how: str, used: set[Allowed]) -> bool:
    """Whether ALLOWED names this scan (the entry that does is added to `used`)."""
    folded = " ".join(sql.split())
    for a in ALLOWED:
        if a.table == table and a.marker in folded and (not a.only or how in a.only):
            used.add(a)
            return True
    return False


async def take_statistics(db: Database, limit: int = 0) -> list[tuple[Any, ...]]:
    """The rows `ANALYZE` writes to sqlite_stat1 now (`limit`: its `analysis_limit`, 400
    being what `PRAGMA optimize` runs on the tables it picks)."""
    async with db.engine.connect() as conn:
        # The limit is the connection's setting: 0 (none) is set again for a full ANALYZE.
        await conn.exec_driver_sql(f"PRAGMA analysis_limit={limit}")
        await conn.exec_driver_sql("ANALYZE")
        rows = (await conn.exec_driver_sql("SELECT tbl, idx, stat FROM sqlite_stat1")).all()
        await conn.exec_driver_sql("PRAGMA analysis_limit=0")
        await conn.commit()
    return [tuple(r) for r in rows]


async def sqlite_scans(
    db: Database,
    statements: list[Statement],
    how: str,
    stats: list[tuple[Any, ...]],
    used: set[Allowed],
) -> list[str]:
    """The full scans of a big table in the plans of `statements` that `ALLOWED` does not
    name, with `stats` (rows of sqlite_stat1, none for none) as SQLite's statistics."""
    found: list[str] = []
    partial = _partial_indexes()
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("DELETE FROM sqlite_stat1")
        if stats:
            await conn.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", stats)
        await conn.exec_driver_sql("ANALYZE sqlite_schema")  # (re)load them
        for st in statements:
            result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + st.sql, st.params)
            for line in (str(row[-1]) for row in result):
                m = _SCAN.match(line)
                if not m or m.group(1) not in BIG or m.group(2) in partial:
                    continue
                if not allowed(m.group(1), st.sql, how, used):
                    found.append(f"[{how}] {line}: {' '.join(st.sql.split())[:300]}")
        await conn.commit()
    return found


async def sweep(p: Any, others: list[str]) -> list[Statement]:
    """The statements of worker steps (servers created, booted and one deleted: every
    controller has work, a webhook delivery is sent), a housekeeping pass (recounting
    `others` too), a forced full sync, a read of the clouds table and the read a pass
    makes of the converging creates' record times (boot looks), as sent."""
    from canopy.controllers.boot_times import looks_after_pass
    from canopy.controllers.housekeeping import HousekeepingController

    with captured(p.db) as seen:
        ids = await p.create(3)
        for _ in range(5):
            await p.step(2.0)
        await p.service.delete(p.ctx, ids[0])
        for _ in range(3):
            await p.step(2.0)
        p.clock.advance(600)
        house = HousekeepingController(p.rt)
        await house.run_once()
        await house.recount(p.clock.now(), limit=len(others) + 10)
        await p.worker.sync.run_once(force=True)
        await p.worker.fleet.refresh()
        # Sent only after a pass while something converges, with boot times known.
        now = p.clock.now()
        await looks_after_pass(p.db, "private", now, [1.0, 2.0], now)
    return seen
