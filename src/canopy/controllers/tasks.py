"""A controller that leases rows and runs one cloud call per row, many at a time.

Each cloud has a concurrency limit (its config); the calls beyond it wait in this worker
for a slot. Rows are leased ahead of the free slots, up to one more limit's worth waiting,
so a slot that frees is filled at once instead of after a transaction; and they are leased
in batches of at least half the limit, so a busy cloud costs one lease transaction per
many calls, not one per call. A row waits for its slot at most about one call, far less
than its lease. `run_once` starts work and returns; `drain` waits for what is in flight.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.runtime import Runtime
from canopy.store.leases import due, lease_servers, unleased
from canopy.store.models import Server

log = logging.getLogger("canopy.controllers")


class LeasedTaskController(ABC):
    name = "task"
    unplaced = False  # whether it also acts on rows on no cloud (power: their deletes)

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._inflight: dict[asyncio.Task[None], str] = {}
        self._busy: Counter[str] = Counter()

    @abstractmethod
    def where(self) -> Sequence[ColumnElement[bool]]:
        """Which rows this controller acts on."""

    @abstractmethod
    async def prepare(self, s: AsyncSession, rows: list[Server]) -> dict[str, Any]:
        """Read what the calls need, in the leasing transaction; may change the rows."""

    @abstractmethod
    async def handle(self, server: Server, extra: Any) -> None:
        """Do the cloud call for one leased row and record the result (own transaction)."""

    async def local(self, s: AsyncSession, rows: list[Server]) -> list[Server]:
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
        # A row leased ahead waits at most one call for its slot, then makes its own: only
        # lease ahead if a lease lasts two calls (it does at the defaults, 60 s and 30 s).
        ahead = limit if c.lease_seconds >= 2 * c.call_timeout_seconds else 0
        free = limit + ahead - self._busy[cloud]
        return free if free >= max(1, limit // 2) else 0

    async def run_once(self) -> int:
        rt = self.rt
        if rt.drivers and all(self.room(c) == 0 for c in rt.drivers) and not self.unplaced:
            return 0  # every cloud has a full queue; a finishing call notifies this loop
        now = rt.clock.now()
        async with rt.db.read() as s:
            result = await s.execute(
                select(Server.cloud, func.count())
                .where(*self.where(), due(now), unleased(now))
                .group_by(Server.cloud)
            )
            counts: dict[str, int] = {c or "": int(n) for c, n in result}
        if not any(self.room(c) for c in counts):
            return 0
        async with rt.db.session() as s:
            batch: list[Server] = []
            for cloud in counts:
                room = self.room(cloud)
                if room <= 0:
                    continue
                cond = Server.cloud.is_(None) if cloud == "" else Server.cloud == cloud
                batch += await lease_servers(
                    s,
                    where=[*self.where(), cond],
                    worker=rt.worker_id,
                    now=now,
                    lease_seconds=rt.lease_seconds,
                    limit=min(room, rt.settings.controllers.batch_size),
                )
            if not batch:
                return 0
            remote = await self.local(s, batch)
            extra = await self.prepare(s, remote) if remote else {}
        for server in remote:
            cloud = server.cloud or ""
            task = asyncio.create_task(self._guarded(server, extra.get(server.id)))
            self._inflight[task] = cloud
            self._busy[cloud] += 1
            task.add_done_callback(self._done)
        return len(batch)

    def _done(self, task: asyncio.Task[None]) -> None:
        cloud = self._inflight.pop(task)
        self._busy[cloud] -= 1

    async def _guarded(self, server: Server, extra: Any) -> None:
        try:
            await self.handle(server, extra)
        except Exception:
            # The lease expires and another pass retries; nothing is lost.
            log.exception("%s: step for server %s failed", self.name, server.id)
        finally:
            self.rt.notify(self.name)  # a slot is free: look for more work at once

    async def drain(self) -> None:
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    @property
    def inflight(self) -> int:
        return len(self._inflight)


async def release_lease(s: AsyncSession, server_id: str, worker: str) -> None:
    await s.execute(
        update(Server)
        .where(Server.id == server_id, Server.claimed_by == worker)
        .values(claimed_by=None, claim_expires_at=None)
    )


async def locked(s: AsyncSession, server_id: str) -> Server | None:
    return (
        await s.execute(select(Server).where(Server.id == server_id).with_for_update())
    ).scalar_one_or_none()
