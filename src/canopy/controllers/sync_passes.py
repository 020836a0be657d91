"""Sync's passes in the worker's loop: each cloud's pass runs on its own, beside the others.

One loop going over the clouds in turn made every cloud wait for the others' passes: a
boot that ended on the public cloud while the private cloud's full pass ran (a second on a
busy machine) was seen only after it. Here the loop starts a pass over each cloud that may
be due and has none running, and returns at once; a pass that ends wakes the loop (its
cloud may have been asked for again meanwhile). The loop's wait skips the clouds that have
a pass running, so it never spins on a cloud it cannot start yet; nor does a pass that did
not run (another worker holds the cloud) wake it: the cloud waits until that worker's lease
could have ended (controllers/sync_schedule.py), even for a create in a hurry.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from canopy.controllers.sync import SyncController

log = logging.getLogger("canopy.sync")


class SyncPasses:
    """Starts `SyncController` passes, one task per cloud at most."""

    def __init__(self, sync: SyncController) -> None:
        self.sync = sync
        self.rt = sync.rt
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> set[str]:
        """The clouds with a pass running."""
        return set(self._running)

    async def start(self) -> int:
        """Start a pass over each cloud that may be due and has none running: how many."""
        now = self.rt.clock.now()
        started = 0
        for cloud in sorted(self.rt.drivers):
            if cloud in self._running or not self.sync.may_be_due(cloud, now):
                continue
            self._running[cloud] = asyncio.create_task(self._one(cloud))
            started += 1
        return started

    async def _one(self, cloud: str) -> None:
        ran = False
        try:
            ran = await self.sync.sync_cloud(cloud)
            if ran:
                self.rt.notify("orchestration")  # stacks waiting on servers it saw change
        except Exception:
            log.exception("sync %s: pass failed", cloud)
            # Not again before the interval at rest, even for a create in a hurry: a
            # failing database is not hammered.
            self.sync.hold_off(
                cloud,
                self.rt.clock.now() + timedelta(seconds=self.rt.settings.controllers.sync_seconds),
            )
        finally:
            self._running.pop(cloud, None)
        if ran:
            # Its cloud may have been asked for meanwhile (the loop's wait skipped it while
            # it ran). Not after a pass that did not run (another worker holds the cloud):
            # the loop would start it again at once, over and over.
            self.rt.notify("sync")

    def next_due_in(self, idle: float) -> float:
        """Seconds until a cloud without a running pass is due, at most `idle`."""
        due = self.sync.next_due_in(self.rt.clock.now(), skip=self.running)
        return idle if due is None else min(idle, due + 0.001)

    async def drain(self) -> None:
        """Wait for the passes running (at a stop)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)
