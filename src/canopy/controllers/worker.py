"""A worker: runs every controller as an asyncio task until told to stop, and a heartbeat.

Before the loops start, the drivers are brought in step with the clouds table (clouds
added at run time: controllers/fleet.py) and every cloud's inventory is read once
(controllers/inventory.py), so capacity and flavor mappings are there before the first
placement. The fleet then looks at the table again every `sync_seconds` (and at once when
the API in this process changes a cloud), so a cloud added, changed or removed at run time
is picked up without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from canopy.controllers.fleet import Fleet
from canopy.controllers.housekeeping import HousekeepingController
from canopy.controllers.inventory import InventoryController
from canopy.controllers.placement import PlacementController
from canopy.controllers.power import PowerController
from canopy.controllers.provisioning import ProvisioningController
from canopy.controllers.provisioning_record import ask_converging_sync
from canopy.controllers.runtime import Runtime
from canopy.controllers.sync import SyncController
from canopy.controllers.sync_passes import SyncPasses
from canopy.notifications.controller import NotificationController
from canopy.orchestration.controller import OrchestrationController
from canopy.reservations.controller import LeaseController

log = logging.getLogger("canopy.worker")


class Worker:
    """Inventory, placement, provisioning, power and sync loops over one Runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.placement = PlacementController(rt)
        self.provisioning = ProvisioningController(rt)
        self.power = PowerController(rt)
        self.sync = SyncController(rt)
        self.sync_passes = SyncPasses(self.sync)  # in `run`: each cloud's pass on its own
        self.housekeeping = HousekeepingController(rt)
        self.inventory = InventoryController(rt)
        self.leases = LeaseController(rt)
        self.orchestration = OrchestrationController(rt)
        self.fleet = Fleet(rt)
        self.notifications = NotificationController(rt)
        self._power_seen = 0  # the power steps finished when the stack loop last heard

    async def refresh_clouds(self) -> int:
        """Bring the drivers in step with the clouds table; read a new cloud's inventory
        (or a changed one's) at once, so it is placeable without waiting a period."""
        changed = await self.fleet.refresh()
        for cloud in changed:
            await self.inventory.inventory_cloud(cloud, force=True)
        return len(changed)

    async def step(self) -> int:
        """One pass of every controller, waiting for cloud calls to finish (for tests)."""
        n = await self.refresh_clouds()
        # Leases first: they are due at an instant, and a slow cloud's inventory must not
        # delay them (in `run`, each has its own loop).
        n += await self.leases.run_once()
        n += await self.orchestration.run_once()
        n += await self.inventory.run_once()
        n += await self.placement.run_once()
        n += await self.provisioning.run_once()
        n += await self.power.run_once()
        await self.provisioning.drain()
        await self.power.drain()
        n += await self.sync.run_once()
        n += await self.orchestration.run_once()  # servers that became ACTIVE meanwhile
        n += await self.notifications.run_once()
        return n

    async def run(self, stop: asyncio.Event) -> None:
        poll = self.rt.settings.controllers.poll_seconds
        # The heartbeat outlives the loops: steps still running at a stop keep their leases
        # until they finish (drain below). It starts first: it renews the inventory's lease.
        beating = asyncio.Event()
        heart = asyncio.create_task(self._heartbeat(beating))
        try:
            try:
                await self.fleet.refresh()
            except Exception:
                log.exception("reading the clouds table at start failed; its loop tries again")
            await self._first_inventory(stop)
        except BaseException:
            beating.set()
            await heart
            await self.fleet.close()
            raise
        loops = [
            self._loop(
                "clouds", self.refresh_clouds, self.rt.settings.controllers.sync_seconds, stop
            ),
            self._loop(
                "inventory",
                self.inventory.run_once,
                self.inventory.idle,
                stop,
                self._inventory_wait,
            ),
            self._loop("placement", self.placement.run_once, poll, stop),
            self._loop("provisioning", self.provisioning.run_once, poll, stop),
            self._loop("power", self._power_pass, poll, stop),
            self._loop("sync", self.sync_passes.start, min(poll, 0.5), stop, self._sync_wait),
            self._loop("leases", self.leases.run_once, poll, stop, self._lease_wait),
            self._loop("orchestration", self.orchestration.run_once, poll, stop, self._stack_wait),
            self._loop("housekeeping", self.housekeeping.run_once, self.housekeeping.idle, stop),
            self._loop("notifications", self.notifications.run_once, poll, stop, self._notify_wait),
        ]
        tasks = [asyncio.create_task(c) for c in loops]
        relay = asyncio.create_task(self._relay(stop))
        try:
            await stop.wait()
        finally:
            # Let each loop finish its pass (no transaction is cut in half), then stop.
            relay.cancel()
            try:
                await relay
            except asyncio.CancelledError:
                pass
            except Exception:
                # Not to be re-raised by the stop: the loops' clean-up below must still run.
                log.exception("the wake relay had failed")
            self.rt.notify()
            _, late = await asyncio.wait(tasks, timeout=10)
            for t in late:
                t.cancel()
            for t in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await self.sync_passes.drain()
            await self.provisioning.drain()
            await self.power.drain()
            await self.notifications.close()
            beating.set()
            await heart
            await self.fleet.close()

    async def _first_inventory(self, stop: asyncio.Event) -> None:
        """Read every cloud's inventory once (or until told to stop), before placing."""
        first = asyncio.create_task(self.inventory.run_once(force=True))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({first, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not first.done():
            first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await first
            except Exception:
                log.exception("inventory at start failed; its loop tries again")

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Renew the leases of every row this worker has a step running for.

        Paced by the event loop's monotonic time, not by the injected clock: what it
        protects is the real time a call runs against the real time a lease lasts.
        """
        every = self.rt.settings.controllers.heartbeat
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
            try:
                lost = await self.rt.heartbeat()
            except Exception:
                # The database is unreachable: calls end when their lease would (Hold).
                log.exception("heartbeat: could not renew leases")
                continue
            if lost:
                # Taken over or run out (the steps say so when they stop), or released by
                # a step that has just recorded its result and is finishing.
                log.debug("heartbeat: %d leases no longer renewed", lost)

    async def _relay(self, stop: asyncio.Event) -> None:
        """Pass a wake from outside (the API after its commit, another worker after its
        own) on to the loops it names; "sync:<cloud>" also asks for that cloud's passes,
        as a create recorded there asks them in its own worker."""
        while not stop.is_set():
            await self.rt.wake.wait()
            names = self.rt.wake.take()
            now = self.rt.clock.now()
            for name in names:
                loop, _, cloud = name.partition(":")
                if loop == "sync" and cloud in self.rt.drivers:
                    try:
                        await ask_converging_sync(self.rt, cloud, now)
                    except Exception:
                        # A wake is a hint: a failed read (the database restarting) loses
                        # this cloud's early passes, which its sync poll covers; the
                        # relaying of this wake's other names and of the next goes on.
                        log.exception("relay: asking the passes of cloud %s failed", cloud)
            self.rt.notify(*sorted({name.partition(":")[0] for name in names}))

    def _sync_wait(self, idle: float) -> float:
        """Sleep until the next sync is due, not a whole poll past it."""
        return self.sync_passes.next_due_in(idle)

    async def _power_pass(self) -> int:
        """A power pass; stacks waiting on deletes look again at once: after a pass that
        started steps, or one that follows a step's end (its result is committed). An
        idle pass wakes nothing: the stack loop has its own poll."""
        finished = self.power.finished
        n = await self.power.run_once()
        if n or finished != self._power_seen:
            self._power_seen = finished
            self.rt.notify("orchestration")
        return n

    def _stack_wait(self, idle: float) -> float:
        """Sleep until a stack's time-based wait ends (a TestResource, a timeout)."""
        due = self.orchestration.next_due_in(self.rt.clock.now())
        return idle if due is None else max(0.0, min(idle, due + 0.001))

    def _inventory_wait(self, idle: float) -> float:
        """Sleep until a cloud left to another worker's lease may be read (when that
        lease could have run out), and no longer than `idle`."""
        due = self.inventory.next_due_in(self.rt.clock.now())
        return idle if due is None else max(0.0, min(idle, due + 0.001))

    def _lease_wait(self, idle: float) -> float:
        """Sleep until the next lease event is due (a lease due in 0.3 s wakes the loop
        then), and no longer than `idle` (leases written by another process's API)."""
        due = self.leases.next_due_in(self.rt.clock.now())
        return idle if due is None else max(0.0, min(idle, due + 0.001))

    def _notify_wait(self, idle: float) -> float:
        """Sleep until the next delivery retry or lease heads-up is due, at most `idle`."""
        due = self.notifications.next_due_in(self.rt.clock.now())
        return idle if due is None else max(0.0, min(idle, due + 0.001))

    async def _loop(
        self,
        name: str,
        fn: Callable[[], Awaitable[int]],
        idle: float,
        stop: asyncio.Event,
        wait: Callable[[float], float] | None = None,
    ) -> None:
        """Call `fn` while it finds work; when idle, wait `idle` seconds or until notified.

        `wait`, if given, shortens the idle wait (sync: to the moment a cloud is due).
        """
        signal = self.rt.signal(name)
        failures = 0
        while not stop.is_set():
            # Cleared before the pass, not after: a notice that arrives during the pass
            # (work handed on meanwhile) then ends the idle wait at once instead of being lost.
            signal.clear()
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
                with contextlib.suppress(TimeoutError):
                    timeout = idle if wait is None else wait(idle)
                    await asyncio.wait_for(signal.wait(), timeout=timeout)
            else:
                await asyncio.sleep(0)
