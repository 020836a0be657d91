"""A worker: runs every controller as an asyncio task until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from canopy.controllers.placement import PlacementController
from canopy.controllers.power import PowerController
from canopy.controllers.provisioning import ProvisioningController
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync import SyncController

log = logging.getLogger("canopy.worker")


class Worker:
    """Placement, provisioning, power and sync loops over one Runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.placement = PlacementController(rt)
        self.provisioning = ProvisioningController(rt)
        self.power = PowerController(rt)
        self.sync = SyncController(rt)

    async def step(self) -> int:
        """One pass of every controller, waiting for cloud calls to finish (for tests)."""
        n = await self.placement.run_once()
        n += await self.provisioning.run_once()
        n += await self.power.run_once()
        await self.provisioning.drain()
        await self.power.drain()
        n += await self.sync.run_once()
        return n

    async def run(self, stop: asyncio.Event) -> None:
        poll = self.rt.settings.controllers.poll_seconds
        loops = [
            self._loop("placement", self.placement.run_once, poll, stop),
            self._loop("provisioning", self.provisioning.run_once, poll, stop),
            self._loop("power", self.power.run_once, poll, stop),
            self._loop("sync", self.sync.run_once, min(poll, 0.5), stop),
        ]
        tasks = [asyncio.create_task(c) for c in loops]
        try:
            await stop.wait()
        finally:
            # Let each loop finish its pass (no transaction is cut in half), then stop.
            self.rt.wake.set()
            _, late = await asyncio.wait(tasks, timeout=10)
            for t in late:
                t.cancel()
            for t in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await self.provisioning.drain()
            await self.power.drain()

    async def _loop(
        self, name: str, fn: Callable[[], Awaitable[int]], idle: float, stop: asyncio.Event
    ) -> None:
        """Call `fn` while it finds work; when idle, wait `idle` seconds or until woken."""
        failures = 0
        while not stop.is_set():
            try:
                n = await fn()
                failures = 0
            except Exception:
                # A database hiccup must not stop the loop; back off and try again.
                failures += 1
                log.exception("%s controller pass failed", name)
                n = 0
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
            if stop.is_set():
                return
            if n == 0:
                self.rt.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.rt.wake.wait(), timeout=idle)
            else:
                await asyncio.sleep(0)
