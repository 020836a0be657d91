"""A controller that leases rows and runs one cloud call per row, many at a time.

Rows are leased only up to each cloud's free concurrency, so a lease is never spent waiting
for a slot. `run_once` starts work and returns; `drain` waits for what is in flight.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.runtime import Runtime
from canopy.store.leases import lease_servers, unleased
from canopy.store.models import Server

log = logging.getLogger("canopy.controllers")


class LeasedTaskController(ABC):
    name = "task"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._inflight: dict[asyncio.Task[None], str] = {}

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
        return sum(1 for c in self._inflight.values() if c == cloud)

    async def run_once(self) -> int:
        rt = self.rt
        now = rt.clock.now()
        due = (Server.next_attempt_at.is_(None)) | (Server.next_attempt_at <= now)
        async with rt.db.read() as s:
            result = await s.execute(
                select(Server.cloud, func.count())
                .where(*self.where(), due, unleased(now))
                .group_by(Server.cloud)
            )
            counts: dict[str, int] = {c or "": int(n) for c, n in result}
        if not counts:
            return 0
        if all(c != "" and rt.concurrency(c) - self.busy(c) <= 0 for c in counts):
            return 0  # every cloud with work is at its limit; a finishing call wakes us
        async with rt.db.session() as s:
            batch: list[Server] = []
            for cloud in counts:
                cond: ColumnElement[bool]
                if cloud == "":
                    room = rt.settings.controllers.batch_size
                    cond = Server.cloud.is_(None)
                else:
                    room = rt.concurrency(cloud) - self.busy(cloud)
                    cond = Server.cloud == cloud
                if room <= 0:
                    continue
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
            task = asyncio.create_task(self._guarded(server, extra.get(server.id)))
            self._inflight[task] = server.cloud or ""
            task.add_done_callback(self._inflight.pop)
        return len(batch)

    async def _guarded(self, server: Server, extra: Any) -> None:
        try:
            await self.handle(server, extra)
        except Exception:
            # The lease expires and another pass retries; nothing is lost.
            log.exception("%s: step for server %s failed", self.name, server.id)
        finally:
            self.rt.wake.set()  # a slot is free: let the loops look for more work

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
