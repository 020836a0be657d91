"""A cloud's digest: what sync last found unchanged, per remote server, in a few bytes each.

A full listing of a big cloud names every server it has, and most are what they were on
the last pass. Comparing each one with its row costs a read of 100,000 rows (and a pass
over every row of the cloud for the ones the listing no longer shows). The digest keeps,
per remote id, a hash of what the cloud reported (`fingerprint`) when the server was last
found to change nothing in its row. A listed server whose fingerprint is unchanged, and
whose row is not in a phase where something is under way (`ACTIVE`, read from the phase
index each pass), is skipped without a read; the rest are compared as before. A full
listing's missing servers are the digest's remote ids it no longer shows, plus the
under-way rows it does not show: read by remote id, not by a pass over the cloud.

What a row can do while its server stays unchanged goes through an under-way phase (a
delete, a power action, a reschedule), so an unchanged server with a settled row needs
nothing. Anything else (a row changed by hand in the database) is caught by the deep pass:
the first full pass of a worker, then every `sync_deep_every` full passes, compares every
listed server and every row of the cloud, as sync did before, and rebuilds the digest.
A pass that does not finish drops the digest, so the next full pass is a deep one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import bindparam, select

from canopy.controllers.listing import LIVE
from canopy.controllers.sync_turns import turn
from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase, RemoteState
from canopy.store.db import Database
from canopy.store.models import Server
from canopy.store.plans import rare, unindexed

# Phases in which a controller is acting on a row that has (or may have) a remote server:
# its listed server is always compared, whatever the digest says.
ACTIVE = (Phase.CREATE, Phase.RESCHEDULE, Phase.CONVERGE, Phase.POWER, Phase.DELETE)
# Remote ids looked up per query.
LOOKUP = 500
# Listed servers fingerprinted, or ids gathered, between two yields of the event loop: a
# fingerprint costs about 2 us, so a chunk holds the loop for a few milliseconds. 100,000
# at once held it for 150-350 ms every full pass (bench/loop_stalls.py).
CHUNK = 1000

T = TypeVar("T")


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` a CHUNK at a time: each is worked on in a turn of its own
    (controllers/sync_turns.py), the event loop given back after it."""
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def fingerprint(r: RemoteServer) -> int:
    """A hash of what sync reads from a listed server (see listing.quiet)."""
    addresses = tuple(sorted((k, tuple(v)) for k, v in r.addresses.items()))
    return hash((r.canopy_id, r.state, addresses, r.fault, r.installation, r.host))


@dataclass(slots=True)
class Digest:
    """One cloud's digest, held by the worker's sync controller."""

    # remote id -> fingerprint of the server when it last changed nothing in its row, or
    # None for one whose row was busy (compared again; still known, so missed if it goes).
    seen: dict[str, int | None] = field(default_factory=dict)
    # Built by a deep pass that finished (else every full pass is a deep one).
    complete: bool = False
    # Full passes since the last deep one.
    since_deep: int = 0

    def deep_due(self, every: int) -> bool:
        """Whether the next full pass is a deep one: one in `every` full passes is."""
        return not self.complete or self.since_deep + 1 >= every

    async def changed(self, remote: Sequence[RemoteServer], active: set[str]) -> list[RemoteServer]:
        """The listed servers to compare: those whose fingerprint moved, or whose row is
        under way. A CHUNK at a time, the loop given back between."""
        seen = self.seen
        out: list[RemoteServer] = []
        for part in chunks(remote):
            async with turn():
                out += [
                    r
                    for r in part
                    if r.remote_id in active or seen.get(r.remote_id) != fingerprint(r)
                ]
        return out

    async def absent(self, alive: set[str]) -> set[str]:
        """The known remote ids a full listing (`alive`) no longer shows, a CHUNK at a time
        (the ids are copied first: the digest may change while the loop is given back)."""
        out: set[str] = set()
        for part in chunks(list(self.seen)):
            async with turn():
                out.update(rid for rid in part if rid not in alive)
        return out

    def record(self, r: RemoteServer) -> None:
        self.seen[r.remote_id] = fingerprint(r)

    def unsettled(self, remote_id: str) -> None:
        self.seen[remote_id] = None

    def forget(self, remote_ids: Iterable[str]) -> None:
        for rid in remote_ids:
            self.seen.pop(rid, None)


# Built once: every pass that compares a listing asks it.
_ACTIVE_REMOTE_IDS = select(Server.remote_id).where(
    rare(Server.phase.in_(ACTIVE)),
    unindexed(Server.cloud) == bindparam("cloud"),
    Server.remote_id.is_not(None),
)


async def active_remote_ids(db: Database, cloud: str) -> set[str]:
    """Remote ids of the rows on `cloud` in an under-way phase: a few, by the phase index."""
    async with db.read() as s:
        return {str(rid) for rid in await s.scalars(_ACTIVE_REMOTE_IDS, {"cloud": cloud})}


async def missing_among(
    db: Database, cloud: str, remote_ids: Iterable[str], started: datetime
) -> list[str]:
    """Ids of the live rows on `cloud` with one of `remote_ids` (servers the full listing
    no longer shows), recorded before the listing began: read by the (cloud, remote id)
    index, LOOKUP at a time."""
    wanted = sorted(remote_ids)
    out: list[str] = []
    for i in range(0, len(wanted), LOOKUP):
        q = select(Server.id, Server.deleted, Server.phase).where(
            Server.cloud == cloud,
            Server.remote_id.in_(wanted[i : i + LOOKUP]),
            Server.remote_recorded_at < started,
        )
        async with turn(), db.read() as s:
            for sid, deleted, phase in await s.execute(q):
                if not deleted and phase in (*LIVE, Phase.DELETE):
                    out.append(sid)
    return out


async def alive_ids(remote: Sequence[RemoteServer]) -> set[str]:
    """Remote ids of the listed servers that are not deleted, a CHUNK at a time."""
    out: set[str] = set()
    for part in chunks(remote):
        async with turn():
            out.update(r.remote_id for r in part if r.state != RemoteState.DELETED)
    return out


async def release(listing: list[RemoteServer]) -> None:
    """Empty `listing` from its end, a CHUNK at a time, the loop given back between: the
    servers its list alone holds are freed a chunk at a time, not all at once."""
    while listing:
        async with turn():
            del listing[-CHUNK:]
