"""A controller that leases rows and runs one step of cloud calls per row, many at a time.

Each cloud has a concurrency limit (its config); the calls beyond it wait in this worker
for a slot. Rows are leased ahead of the free slots, up to one more limit's worth waiting,
so a slot that frees is filled at once instead of after a transaction; and they are leased
in batches of at least half the limit, so a busy cloud costs one lease transaction per
many calls, not one per call. A row waiting for its slot is held like one in a call: the
heartbeat renews its lease, and its call is fenced when the slot comes (controllers/
fencing.py). `run_once` starts work and returns; `drain` waits for what is in flight.

The controller is generic over the leased table: `model` (with the `Retried` lease
columns), the column naming each row's cloud, and the order rows are taken in.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from canopy.controllers.fencing import Hold, LeaseLost
from canopy.controllers.runtime import Runtime
from canopy.store.leases import When, due, lease_rows, row_key, unleased
from canopy.store.models import Retried, Server
from canopy.store.plans import rare, unindexed
from canopy.telemetry import CONTROLLER_STEPS

log = logging.getLogger("canopy.controllers")

R = TypeVar("R", bound=Retried)


class LeasedTaskController(ABC, Generic[R]):
    name = "task"
    unplaced = False  # whether it also acts on rows on no cloud (power: their deletes)
    model: ClassVar[type[Retried]]  # the leased table
    order_by: ClassVar[Sequence[QueryableAttribute[Any]]] = ()  # which rows go first

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._inflight: dict[asyncio.Task[None], str] = {}
        self._busy: Counter[str] = Counter()
        self.finished = 0  # steps ended so far (recorded, failed or abandoned)

    @abstractmethod
    def where(self) -> Sequence[ColumnElement[bool]]:
        """Which rows this controller acts on: the few in its working phases."""

    def pending(self) -> list[ColumnElement[bool]]:
        """`where`, marked as true for few rows, so the plan searches the phase index even
        when the database holds statistics (store/plans.py)."""
        return [cast(ColumnElement[bool], rare(t)) for t in self.where()]

    def count_query(self, now: datetime, lease_now: When) -> Select[str | None, int]:
        """How many rows of each cloud are due and unleased: what `run_once` asks first."""
        col = self.cloud_column()
        return (
            select(col, func.count())
            .where(*self.pending(), due(self.model, now), unleased(self.model, lease_now))
            .group_by(col)
        )

    @abstractmethod
    def cloud_column(self) -> QueryableAttribute[str | None]:
        """The column naming the cloud a row's calls go to (None: no cloud yet)."""

    @abstractmethod
    async def prepare(self, s: AsyncSession, rows: list[R]) -> dict[Hashable, Any]:
        """Read what the calls need, in the leasing transaction; may change the rows."""

    @abstractmethod
    async def handle(self, row: R, hold: Hold, extra: Any) -> None:
        """Do the cloud calls for one leased row, under `hold`, and record the result."""

    async def local(self, s: AsyncSession, rows: list[R]) -> list[R]:
        """Finish rows that need no cloud call, in the leasing transaction; return the rest."""
        return rows

    def busy(self, cloud: str) -> int:
        """Rows of `cloud` this worker holds: in a call, or waiting for a slot."""
        return self._busy[cloud]

    def room(self, cloud: str) -> int:
        """How many more rows of `cloud` to lease now: 0 until a batch's worth is free."""
        c = self.rt.settings.controllers
        if cloud == "":  # rows on no cloud are finished locally, without a call
            return c.batch_size
        limit = self.rt.concurrency(cloud)
        # As many waiting for a slot as calls running: the heartbeat renews the leases of
        # the waiting ones, so no lease length makes that unsafe.
        free = 2 * limit - self._busy[cloud]
        return free if free >= max(1, limit // 2) else 0

    def _cloud(self, row: R) -> str:
        value = getattr(row, self.cloud_column().key)
        return str(value) if value else ""

    async def run_once(self) -> int:
        rt = self.rt
        model, col = self.model, self.cloud_column()
        if rt.drivers and all(self.room(c) == 0 for c in rt.drivers) and not self.unplaced:
            return 0  # every cloud has a full queue; a finishing call notifies this loop
        now = rt.clock.now()
        async with rt.db.read() as s:
            result = await s.execute(self.count_query(now, rt.lease_now()))
            counts: dict[str, int] = {c or "": int(n) for c, n in result}
        if not any(self.room(c) for c in counts):
            return 0
        keeper = rt.leases(model)
        sent = asyncio.get_running_loop().time()  # before the lease is written: see Hold
        async with rt.db.session() as s:
            lease_now = rt.lease_now()
            batch: list[R] = []
            for cloud in counts:
                room = self.room(cloud)
                if room <= 0:
                    continue
                cond = col.is_(None) if cloud == "" else unindexed(col) == cloud
                rows = await lease_rows(
                    s,
                    model,
                    where=[*self.pending(), cond, due(model, now)],
                    worker=rt.worker_id,
                    now=lease_now,
                    lease_seconds=rt.lease_seconds,
                    limit=min(room, rt.settings.controllers.batch_size),
                    order_by=self.order_by,
                    exclude=keeper.keys(),
                )
                batch += cast(list[R], rows)  # rows of self.model, which is R
            if not batch:
                return 0
            remote = await self.local(s, batch)
            extra = await self.prepare(s, remote) if remote else {}
        for row in remote:
            cloud = self._cloud(row)
            k = row_key(row)
            hold = keeper.hold(k, renewed=sent, at=lease_now)
            task = asyncio.create_task(self._guarded(row, hold, extra.get(k)))
            self._inflight[task] = cloud
            self._busy[cloud] += 1
            task.add_done_callback(self._done)
        return len(batch)

    def _done(self, task: asyncio.Task[None]) -> None:
        cloud = self._inflight.pop(task)
        self._busy[cloud] -= 1

    async def _guarded(self, row: R, hold: Hold, extra: Any) -> None:
        try:
            await self.handle(row, hold, extra)
        except LeaseLost as e:
            # Another worker has the row now (or may have it soon): it repeats the step.
            log.warning("%s: step for %s abandoned: %s", self.name, hold.key, e)
            CONTROLLER_STEPS.labels(controller=self.name, outcome="lease_lost").inc()
        except Exception:
            # The lease expires and another pass retries; nothing is lost.
            log.exception("%s: step for %s failed", self.name, hold.key)
        finally:
            hold.keeper.drop(hold)
            self.finished += 1
            self.rt.notify(self.name)  # a slot is free: look for more work at once

    async def drain(self) -> None:
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    @property
    def inflight(self) -> int:
        return len(self._inflight)


async def locked(s: AsyncSession, server_id: str) -> Server | None:
    return (
        await s.execute(select(Server).where(Server.id == server_id).with_for_update())
    ).scalar_one_or_none()


async def locked_held(s: AsyncSession, server_id: str, worker: str) -> Server | None:
    """The row, locked, if `worker` still holds its lease; LeaseLost if another took it.

    What a failed step decides (back off, give up, try elsewhere) is recorded only by the
    step's holder: a worker that lost the row records nothing (the transaction rolls back).
    """
    server = await locked(s, server_id)
    if server is not None and server.claimed_by != worker:
        raise LeaseLost(f"server {server_id}: now held by {server.claimed_by or 'nobody'}")
    return server
