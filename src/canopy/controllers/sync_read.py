"""Sync's read side: what a listing changes, found in bounded slices without a lock.

A full listing of a big cloud holds every server the cloud has: 100,000 compared at once
held the event loop for seconds. Here the listing is compared a slice at a time (one
light read of the rows it names, then the observation rule on each), with the loop given
back between slices; rows the full listing no longer shows are read in pages, in index
order. Nothing here locks or writes: sync then locks and changes only the rows found here
(controllers/sync.py), a slice per transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select

from canopy.controllers.listing import LIGHT, LIVE, quiet
from canopy.controllers.sync_digest import Digest
from canopy.controllers.sync_turns import api_goes_first, turn
from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase, RemoteState
from canopy.store.db import Database
from canopy.store.models import Server

# Listed servers compared per slice, and rows read per page: each costs the loop a few
# milliseconds at most before it is handed back (about 5 ms for a slice on a quiet
# 2-core machine: a light read of its rows, then the observation rule on each).
SLICE = 100
# A row that changes costs several times a compared one (its locked ORM read, its UPDATE,
# its notification and event): a write slice (one transaction) takes SLICE // WEIGHT
# rows, so it too gives the loop back within a few ms (100 changed rows held it ~15 ms).
WEIGHT = 4
PAGE = 500

T = TypeVar("T")


def slices(
    items: Sequence[T], size: int | None = None, *, writes: bool = False
) -> Iterator[Sequence[T]]:
    """`items` a slice (SLICE, read when called; a WEIGHT-th of it if `writes`) at a time."""
    size = size or (max(1, SLICE // WEIGHT) if writes else SLICE)
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(slots=True)
class Listing:
    """What a listing changes, judged from light reads (checked again under lock)."""

    busy: list[RemoteServer] = field(default_factory=list)  # their rows may change
    leaks: list[str] = field(default_factory=list)  # remote ids of servers with no row
    adopting: set[str] = field(default_factory=set)  # canopy ids of rows with no remote id


async def compare(
    db: Database,
    cloud: str,
    remote: Sequence[RemoteServer],
    started: datetime,
    installation: str | None = None,
    digest: Digest | None = None,
) -> Listing:
    """Sort the listed servers into busy ones and leaks, a slice at a time.

    `installation` is this installation's id. A server tagged by another installation is
    never touched; a server with no row is a leak only if it carries this installation's
    tag. A server from before canopy tagged installations (no tag) is canopy's only when a
    row of this database carries its canopy id (a random UUID this installation made)."""
    out = Listing()
    for part in slices(remote):
        async with turn():  # one slice of one pass per turn of the loop
            await _compare_slice(db, cloud, part, started, installation, digest, out)
    return out


async def _compare_slice(
    db: Database,
    cloud: str,
    part: Sequence[RemoteServer],
    started: datetime,
    installation: str | None,
    digest: Digest | None,
    out: Listing,
) -> None:
    """One slice of `compare`: one light read of its rows, then the rule on each."""
    ids = [r.canopy_id for r in part if r.canopy_id]
    light: dict[str, Any] = {}
    if ids:
        async with db.read() as s:
            rows = await s.execute(select(*LIGHT).where(Server.id.in_(ids)))
            light.update((row.id, row) for row in rows)
        await api_goes_first()  # the read was off the loop; the rule is on it
    for r in part:
        if not r.canopy_id:
            continue  # not canopy's (made out of band, untagged): never touched
        if r.installation is not None and r.installation != installation:
            continue  # another installation's (sharing the account): never touched
        row = light.get(r.canopy_id)
        if row is None:
            if r.state != RemoteState.DELETED and r.installation == installation:
                out.leaks.append(r.remote_id)
        elif not quiet(row, r, cloud, started):
            out.busy.append(r)
            if row.remote_id is None:
                out.adopting.add(row.id)
            if digest is not None:
                # Compared again next pass, and missed if it vanishes: its row may
                # settle in this pass, out of the under-way phases.
                digest.unsettled(r.remote_id)
            continue
        elif digest is not None:
            digest.record(r)
            continue
        if digest is not None:
            digest.forget((r.remote_id,))


async def missing(db: Database, cloud: str, alive: set[str], started: datetime) -> list[str]:
    """Ids of rows on `cloud` whose remote server the full listing `alive` does not show.

    Read in pages along the cloud's (cloud, remote_id) index, each page starting from a
    range bound on the index, so a page costs the same at the first row and the last.
    """
    out: list[str] = []
    after: tuple[str, str] | None = None
    while True:
        q = select(Server.remote_id, Server.id, Server.deleted, Server.phase).where(
            Server.cloud == cloud,
            Server.remote_id.is_not(None),
            Server.remote_recorded_at < started,
        )
        if after is not None:
            rid, sid = after
            q = q.where(
                Server.remote_id >= rid,
                or_(Server.remote_id > rid, and_(Server.remote_id == rid, Server.id > sid)),
            )
        q = q.order_by(Server.remote_id, Server.id).limit(PAGE)
        async with turn():  # one page of one pass per turn of the loop
            async with db.read() as s:
                page = (await s.execute(q)).all()
            await api_goes_first()  # as in _compare_slice
            for rid_, sid_, deleted, phase in page:
                if not deleted and phase in (*LIVE, Phase.DELETE) and rid_ not in alive:
                    out.append(sid_)
        if len(page) < PAGE:
            return out
        after = (str(page[-1][0]), page[-1][1])  # remote_id IS NOT NULL above
