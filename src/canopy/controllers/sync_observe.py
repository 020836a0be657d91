"""Sync's write side: one slice of listed servers applied to their rows, under lock.

Adoption (a row created but never recorded), leaks (a server whose row is gone, deleted,
on another cloud, or a second copy), deletes seen in a changes-since listing, and the
observation of each live server (controllers/observe.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.listing import LIVE
from canopy.controllers.observe import apply_observation
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync_gone import lock_rows, servers_gone
from canopy.controllers.sync_rows import Draft, lock_drafts, log_events, write_drafts
from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase, RemoteState
from canopy.notifications.outbox import servers_seen
from canopy.store.leases import live
from canopy.store.models import Server


async def _between() -> None:
    """Give the loop back between a slice's steps (its locked read, the rule on each row,
    its UPDATEs, its events and notifications, its commit). On SQLite every statement runs
    on the loop's thread (store/sqlite_inline.py), so a slice of 25 changed rows held the
    loop 5-7 ms of CPU in one piece; in steps, about 3 ms at most (bench/sync_holds.py).
    The transaction stays open meanwhile: this process's other writes wait for its write
    lock as they did before, while reads and requests go on. On PostgreSQL each statement
    awaits the server anyway."""
    await asyncio.sleep(0)


@dataclass
class Observed:
    """What one slice came to."""

    leaks: list[str] = field(default_factory=list)  # remote ids to delete
    rescheduled: bool = False  # a failed boot now waits for provisioning
    answered: bool = False  # a server's state changed, or a row went: stacks may step


async def observe(
    rt: Runtime,
    s: AsyncSession,
    cloud: str,
    part: Sequence[RemoteServer],
    adopting: set[str],
    started: datetime,
    last_pass: datetime | None,
) -> Observed:
    """Apply one slice of listed servers to their rows, locked: its leaks, whether a failed
    boot now waits for provisioning, and whether a server changed state or went.

    The rows are read and changed as plain columns and written a few statements for the
    slice (controllers/sync_rows.py); rows whose servers are gone are then read as ORM
    rows for `servers_gone` (deletes finish through the ORM everywhere)."""
    now = rt.clock.now()
    ids = [r.canopy_id for r in part if r.canopy_id]
    # Rows to adopt (created, never recorded) whose create step is still running.
    wanted = [i for i in ids if i in adopting]
    leased: set[str] = set()
    if wanted:
        leased.update(
            await s.scalars(
                select(Server.id).where(Server.id.in_(wanted), live(Server, rt.lease_now()))
            )
        )
    # Locked; a row someone else holds is left for the next pass.
    rows = await lock_drafts(s, ids) if ids else {}
    await _between()
    leaks: list[str] = []
    gone: list[str] = []  # written together, after the others (controllers/sync_gone.py)
    adopted: list[tuple[str, str]] = []  # (server id, the adopt event's details)
    seen: list[tuple[Draft, str | None]] = []  # notifications, in listing order
    rescheduled = answered = False
    for r in part:
        row = rows.get(r.canopy_id) if r.canopy_id else None
        if row is None:
            continue  # busy elsewhere (or gone since the read): next pass
        if r.state == RemoteState.DELETED:
            if row.cloud == cloud and row.remote_id == r.remote_id:
                gone.append(row.id)
            continue
        if row.deleted or row.cloud != cloud:
            leaks.append(r.remote_id)
            continue
        if row.remote_id is None:
            row.remote_id = r.remote_id  # adoption: created, but never recorded
            row.remote_recorded_at = now
            row.zone = r.zone or row.zone
            if row.phase == Phase.CREATE and row.id not in leased:
                row.phase = Phase.CONVERGE
            adopted.append((row.id, f"adopted {r.remote_id} found on {cloud} by its canopy id"))
        elif row.remote_id != r.remote_id:
            leaks.append(r.remote_id)  # a second copy: keep the recorded one
            continue
        if r.host is not None and row.host != r.host:
            row.host = r.host  # where the cloud runs it (moved, or not yet recorded)
        if row.phase in LIVE or row.phase == Phase.CREATE:
            changed = apply_observation(row, r.state, started, fault=r.fault, addresses=r.addresses)
            if changed == "active":  # booted: learn the cloud's boot time
                rt.boots.saw_boot(cloud, row, r, started, last_pass)  # type: ignore[arg-type]
            seen.append((row, changed))
            if changed:
                row.updated_at = now
                answered = True
            rescheduled |= row.phase == Phase.RESCHEDULE
    await _between()
    await write_drafts(s, list(rows.values()))
    await _between()
    await log_events(s, adopted, "create", "adopt", cloud, now)
    await servers_seen(s, seen, now)
    await _between()
    if gone:  # locked above: read again as ORM rows, after the writes above
        orm = {row.id: row for row in await lock_rows(s, Server.id.in_(gone))}
        await servers_gone(s, [orm[i] for i in gone if i in orm], started, now)
    return Observed(leaks, rescheduled, answered or bool(gone))
