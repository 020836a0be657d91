"""Fenced leases: a worker calls a cloud for a row only while it provably holds the row.

A `Hold` is this worker's lease on one row for as long as a step for that row runs (in a
call, or waiting for a concurrency slot). A `LeaseKeeper` owns the holds on one table:

- `fence(hold)` renews the lease with a conditional UPDATE (`... WHERE claimed_by = me AND
  claim_expires_at > now`); if no row comes back, the lease is lost and the call is not
  made. A call starts only on a renewal confirmed before it and sent at most `FRESH` of a
  lease earlier: `Runtime.call`, once the call has its concurrency slot, fences it unless
  the last renewal (the lease itself, a fence, a heartbeat) is that recent by both the
  monotonic clock and the lease clock. Fences asked for while one is being written share
  the next statement, so a burst of calls costs one short write transaction, not one each.
- `beat()`, from the worker's heartbeat, renews every hold in one statement and marks
  lost the ones that did not renew.
- Each hold knows when its lease ends *as this worker knows it*: the local monotonic time
  at which its last successful renewal started, plus the lease, minus a margin. A call
  made under a hold is cancelled at that moment if no renewal came meanwhile (see
  `Runtime.call`), so when renewals stop (the database is unreachable, the loop stalls)
  this worker has stopped waiting for the call before another worker may take the row.
- The keys of the holds are this worker's in-flight set: its controllers never lease a
  row of it again while the step runs, even if its lease ran out.

docs/architecture.md ("A lease is a fence") gives the argument.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from canopy.store.leases import When, renew_leases
from canopy.store.models import Leased

if TYPE_CHECKING:
    from canopy.controllers.runtime import Runtime

log = logging.getLogger("canopy.controllers")

# A hold counts as lost this fraction of a lease before the lease itself runs out, to
# cover a stalled event loop and the time a cancelled call takes to unwind.
MARGIN = 0.1
# A call may start on a renewal sent at most this fraction of a lease before it; an older
# one is renewed first (the fence). Nobody can take a row within a lease of its renewal,
# so a renewal this recent proves the lease as well as a new one would.
FRESH = 0.1


class LeaseLost(Exception):
    """This worker no longer holds the row's lease: the step stops, and records nothing."""


@dataclass(eq=False)
class Hold:
    """This worker's lease on one row while a step for it runs."""

    keeper: LeaseKeeper
    key: Hashable
    lease_seconds: float
    renewed: float  # loop time at which the last successful renewal was sent
    # The lease clock's reading that renewal used, when it is a value (not SQL): on SQLite
    # and under a test's FakeClock a jump of that clock ages the renewal too.
    renewed_at: datetime | None = None
    lost: bool = False
    # The calls made under this hold: each one's timeout, and its own deadline (the call
    # timeout), which the lease may only bring forward.
    calls: dict[asyncio.Timeout, float] = field(default_factory=dict)

    @property
    def expires(self) -> float:
        """Loop time after which this worker may no longer count on the lease."""
        return self.renewed + self.lease_seconds * (1.0 - MARGIN)

    def deadline(self, own: float) -> float:
        """When a call whose own deadline is `own` must end under this hold."""
        return min(own, self.expires)

    def age(self, lease_now: When) -> float:
        """Seconds since the last successful renewal was sent, by the older-seeming clock."""
        age = asyncio.get_running_loop().time() - self.renewed
        if isinstance(lease_now, datetime) and self.renewed_at is not None:
            age = max(age, (lease_now - self.renewed_at).total_seconds())
        return age

    def fresh(self, lease_now: When) -> bool:
        """Whether a call may start on the last renewal without renewing again."""
        return not self.lost and self.age(lease_now) <= FRESH * self.lease_seconds

    def renew(self, sent_at: float, at: When) -> None:
        """A renewal sent at `sent_at` (lease clock `at`) succeeded: calls may run longer."""
        if self.lost:
            return
        self.renewed = max(self.renewed, sent_at)
        if isinstance(at, datetime):
            self.renewed_at = at if self.renewed_at is None else max(self.renewed_at, at)
        self._reschedule()

    def lose(self) -> None:
        """The lease is gone: cancel the calls made under it now."""
        self.lost = True
        self._reschedule()

    def _reschedule(self) -> None:
        loop = asyncio.get_running_loop()
        for timeout, own in self.calls.items():
            if not timeout.expired():
                timeout.reschedule(loop.time() if self.lost else self.deadline(own))


@dataclass(eq=False)
class _Renewal:
    hold: Hold
    done: asyncio.Future[bool]


class LeaseKeeper:
    """The holds this worker has on one leased table, and their renewal."""

    def __init__(self, rt: Runtime, model: type[Leased]) -> None:
        self.rt = rt
        self.model = model
        self._holds: dict[Hashable, Hold] = {}
        self._queue: list[_Renewal] = []
        self._writer: asyncio.Task[None] | None = None

    def hold(self, key: Hashable, *, renewed: float, at: When) -> Hold:
        """Start holding `key`, leased by a statement sent at loop time `renewed`, which
        read `at` on the lease clock."""
        if key in self._holds:
            raise RuntimeError(f"{self.model.__name__} {key!r} already has a step running")
        h = Hold(self, key, self.rt.lease_seconds, renewed)
        if isinstance(at, datetime):
            h.renewed_at = at
        self._holds[key] = h
        return h

    def drop(self, hold: Hold) -> None:
        """The step is over (its result recorded, or abandoned)."""
        if self._holds.get(hold.key) is hold:
            del self._holds[hold.key]
        hold.lost = True  # nothing more may be done under it

    def keys(self) -> frozenset[Hashable]:
        """This worker's in-flight rows of the table: never leased again while they run."""
        return frozenset(self._holds)

    def __len__(self) -> int:
        return len(self._holds)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._holds

    async def fence(self, hold: Hold) -> None:
        """Renew `hold` just before a cloud call; raise LeaseLost if it is gone."""
        if hold.lost:
            raise LeaseLost(f"{self.model.__name__} {hold.key}: lease lost")
        [ok] = await self._renew([hold])
        if not ok:
            raise LeaseLost(f"{self.model.__name__} {hold.key}: lease lost")

    async def beat(self) -> int:
        """Renew every hold (one statement); return how many were lost."""
        holds = [h for h in self._holds.values() if not h.lost]
        if not holds:
            return 0
        return (await self._renew(holds)).count(False)

    async def _renew(self, holds: list[Hold]) -> list[bool]:
        """Queue renewals; they are written with any others queued by the next statement."""
        loop = asyncio.get_running_loop()
        mine = [_Renewal(h, loop.create_future()) for h in holds]
        self._queue += mine
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return [await r.done for r in mine]

    async def _write(self) -> None:
        while self._queue:
            await asyncio.sleep(0)  # let the renewals asked for at this moment join
            batch, self._queue = self._queue, []
            try:
                held = await self._statement({r.hold.key for r in batch})
            except BaseException as e:
                for r in batch:
                    if not r.done.done():
                        r.done.set_exception(e)
                if isinstance(e, asyncio.CancelledError):
                    raise
                continue
            keys, sent, at = held
            for r in batch:
                ok = r.hold.key in keys and not r.hold.lost
                if ok:
                    r.hold.renew(sent, at)
                elif not r.hold.lost:
                    r.hold.lose()
                if not r.done.done():
                    r.done.set_result(ok)

    async def _statement(self, keys: set[Hashable]) -> tuple[set[Hashable], float, When]:
        """(keys still held, loop time the renewal was sent, its lease clock reading)."""
        rt = self.rt
        sent = asyncio.get_running_loop().time()
        async with rt.db.session() as s:
            now = rt.lease_now()  # read after the wait for the lock: never before `sent`
            held = await renew_leases(
                s, self.model, keys, worker=rt.worker_id, now=now, lease_seconds=rt.lease_seconds
            )
        return held, sent, now
