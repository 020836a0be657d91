"""What every controller shares: leases, fenced cloud calls, backoff, concurrency, timeouts."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from prometheus_client import Counter, Histogram

from canopy.config import CloudSettings, Settings
from canopy.controllers.boot_times import BootTimes, SyncAsks
from canopy.controllers.fencing import Hold, LeaseKeeper, LeaseLost
from canopy.controllers.health import credentials_refused
from canopy.domain.clock import Clock, SystemClock
from canopy.domain.errors import (
    CapacityError,
    CloudAuthError,
    CloudError,
    CloudQuotaError,
    NoAnswer,
    NotFound,
    TransientError,
)
from canopy.domain.wake import Wake
from canopy.providers.base import Compute
from canopy.store.db import Database
from canopy.store.installation import installation_id
from canopy.store.leases import DatabaseClock, When
from canopy.store.models import Leased
from canopy.store.wakes import WakeChannel
from canopy.telemetry import CLOUD_CALL_SECONDS, CLOUD_CALLS

T = TypeVar("T")
log = logging.getLogger("canopy.controllers")


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseClock(Protocol):
    """Where lease expiry is read from: a Clock, or the database's own clock (SQL)."""

    def now(self) -> When: ...


@dataclass
class Runtime:
    """The context a controller runs in. One per worker process."""

    db: Database
    settings: Settings
    drivers: dict[str, Compute]
    clock: Clock
    worker_id: str = field(default_factory=worker_identity)
    rng: random.Random = field(default_factory=random.Random)
    # Set from outside the controllers (the API after a commit): the loops it names (every
    # loop if none) look for work.
    wake: Wake = field(default_factory=Wake)
    # How this worker tells the workers of other processes (store/wakes.py; None: it
    # does not, they find the work at their polls).
    channel: WakeChannel | None = None
    # The clock leases expire by (None: chosen in __post_init__, see `lease_now`).
    lease_clock: LeaseClock | None = None
    # Each cloud's settings, by name: the config's, then those of the clouds the worker's
    # fleet (controllers/fleet.py) builds from the clouds table (added at run time, draining).
    cloud_configs: dict[str, CloudSettings] = field(default_factory=dict)
    # Passes over a cloud asked for, and when: a create just recorded there waits for sync
    # to see it boot, so that cloud's next pass comes at the converging interval, not at
    # rest's, and another when its boot is expected to end (controllers/boot_times.py).
    sync_soon: SyncAsks = field(default_factory=SyncAsks)
    # Each cloud's recent boot times, as sync saw them.
    boots: BootTimes = field(default_factory=BootTimes)
    _installation: str | None = None
    # The controllers' fan-outs over clouds open their transactions under this
    # (`db_slot`): at most the pool's size at once (`[database] pool_size` on
    # PostgreSQL), half of what it holds with its overflow, so a pass over 500 clouds
    # queues here instead of timing out in the pool, and the API and the other loops keep
    # the rest.
    _db_slots: asyncio.Semaphore | None = None
    _limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _signals: dict[str, asyncio.Event] = field(default_factory=dict)
    _keepers: dict[type[Leased], LeaseKeeper] = field(default_factory=dict)
    _call_metrics: dict[tuple[str, str, str], tuple[Counter, Histogram]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        for cloud in self.settings.clouds:
            self.cloud_configs.setdefault(cloud.name, cloud)
            self._limits[cloud.name] = asyncio.Semaphore(cloud.concurrency)
        if self.lease_clock is None:
            # Workers on several machines share PostgreSQL: its clock is the one they all
            # read. SQLite is one machine, one clock. An injected clock (a test's FakeClock)
            # is used as given, on either backend, so tests keep lease expiry in hand.
            real = isinstance(self.clock, SystemClock)
            self.lease_clock = DatabaseClock() if real and self.db.is_postgres else self.clock

    def lease_now(self) -> When:
        """Now on the lease clock: a value, or SQL the database evaluates (PostgreSQL)."""
        assert self.lease_clock is not None
        return self.lease_clock.now()

    @property
    def db_slot(self) -> asyncio.Semaphore:
        """Held around each transaction of a per-cloud fan-out (never around a cloud call:
        a cloud slow to answer must not keep a connection)."""
        if self._db_slots is None:
            self._db_slots = asyncio.Semaphore(self.db.pool_size)
        return self._db_slots

    def leases(self, model: type[Leased]) -> LeaseKeeper:
        """This worker's holds on the rows of `model` (one keeper per table)."""
        keeper = self._keepers.get(model)
        if keeper is None:
            keeper = self._keepers[model] = LeaseKeeper(self, model)
        return keeper

    async def heartbeat(self) -> int:
        """Renew every row this worker has a step running for: one statement per table.

        Returns how many holds were lost (their steps stop before their next call).
        """
        lost = await asyncio.gather(*(k.beat() for k in list(self._keepers.values())))
        return sum(lost)

    def signal(self, loop: str) -> asyncio.Event:
        """The event the controller loop `loop` waits on when it is idle."""
        return self._signals.setdefault(loop, asyncio.Event())

    def notify(self, *loops: str) -> None:
        """Tell the named controller loops (all of them if none is named) to look for work.

        A controller that hands work on names the next one (placement -> provisioning), so
        a pipeline moves at once instead of at the next poll, and a loop is not woken by
        work that is not its own.
        """
        for name in loops or tuple(self._signals):
            self.signal(name).set()

    def tell_others(self, *names: str) -> None:
        """Wake the named loops of the workers in other processes, for work committed that
        another worker may be the one to take (a pass over a cloud whose sync job it
        holds: "sync:<cloud>"). Its own loops are `notify`'s."""
        if self.channel is not None:
            self.channel.send(names)

    @property
    def lease_seconds(self) -> float:
        return self.settings.controllers.lease_seconds

    def driver(self, cloud: str) -> Compute:
        try:
            return self.drivers[cloud]
        except KeyError:
            raise NotFound(f"cloud {cloud!r} is not configured in this worker") from None

    def concurrency(self, cloud: str) -> int:
        """How many calls to `cloud` may run at once (from its config)."""
        c = self.cloud_configs.get(cloud)
        return 0 if c is None else c.concurrency

    def set_cloud(self, cloud: CloudSettings, driver: Compute) -> None:
        """Drive `cloud` with `driver` from now on (a cloud added or changed at run time)."""
        before = self.cloud_configs.get(cloud.name)
        if before is None or before.concurrency != cloud.concurrency:
            # Calls under the old limit release the old semaphore; new ones take this one.
            self._limits[cloud.name] = asyncio.Semaphore(cloud.concurrency)
        self.cloud_configs[cloud.name] = cloud
        self.drivers[cloud.name] = driver

    def drop_cloud(self, cloud: str) -> Compute | None:
        """Stop driving `cloud`; its driver, for the caller to close once idle."""
        self.cloud_configs.pop(cloud, None)
        return self.drivers.pop(cloud, None)

    async def installation_id(self) -> str:
        """This installation's id (store/installation.py), read once per worker."""
        if self._installation is None:
            self._installation = await installation_id(self.db, self.clock)
        return self._installation

    async def call(
        self,
        cloud: str,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        *,
        hold: Hold | None = None,
    ) -> T:
        """Run one cloud call under the cloud's concurrency limit, fenced by `hold`.

        With a hold (the lease on the row the call is for), the call is fenced: its lease
        is renewed just before it (see `_slot`); if that fails, LeaseLost and no call. The
        call is then cancelled at the earlier of the call timeout and the end of the lease
        as this worker knows it (moved on by each renewal), and a cancelled one raises
        LeaseLost too. A timeout or an unexpected exception becomes a TransientError: the
        step is retried later with backoff, and since every step is idempotent a retry is
        always safe. Each call made is counted by cloud, operation and outcome. A cloud
        that refuses canopy's credentials is marked unhealthy (controllers/health.py)
        before the CloudAuthError goes on to the step.
        """
        try:
            return await self._call(cloud, operation, fn, hold)
        except CloudAuthError as e:
            await credentials_refused(self.db, cloud, e)
            raise

    async def _call(
        self, cloud: str, operation: str, fn: Callable[[], Awaitable[T]], hold: Hold | None
    ) -> T:
        sem = self._limits.setdefault(cloud, asyncio.Semaphore(50))
        timeout = self.settings.controllers.call_timeout_seconds
        await self._slot(sem, hold)
        try:
            loop = asyncio.get_running_loop()
            own = loop.time() + timeout
            started = time.perf_counter()
            outcome = "error"
            t = asyncio.timeout_at(own if hold is None else hold.deadline(own))
            try:
                async with t:
                    if hold is not None:
                        hold.calls[t] = own
                    try:
                        result = await fn()
                    finally:
                        if hold is not None:
                            hold.calls.pop(t, None)
                outcome = "ok"
                return result
            except TimeoutError:
                cut = t.expired() and (t.when() or own) < own
                if hold is not None and (hold.lost or cut):
                    hold.lose()  # cut short by the lease: nothing more under it
                    outcome = "lease_lost"
                    raise LeaseLost(f"{cloud}: {operation} cancelled: lease lost") from None
                outcome = "timeout"
                raise NoAnswer(f"no answer within {timeout:g}s", cloud=cloud) from None
            except CloudError as e:
                outcome = _outcome(e)
                raise
            except NotFound:
                outcome = "not_found"
                raise
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            except Exception as e:  # a driver bug must not kill the worker
                log.exception("unexpected error from cloud %s", cloud)
                raise TransientError(f"{type(e).__name__}: {e}", cloud=cloud) from e
            finally:
                calls, seconds = self._metrics(cloud, operation, outcome)
                calls.inc()
                seconds.observe(time.perf_counter() - started)
        finally:
            sem.release()

    async def _slot(self, sem: asyncio.Semaphore, hold: Hold | None) -> None:
        """Take a concurrency slot for a call; with a hold, then fence the call.

        The fence comes after the wait for the slot, however long that was, unless the
        last renewal is fresh (`Hold.fresh`: sent at most a tenth of a lease ago, e.g.
        the lease taken a moment ago for a slot that was free): it proves the lease as
        well as a new one, since nobody can take the row within a lease of it.
        """
        await sem.acquire()
        if hold is None or hold.fresh(self.lease_now()):
            return
        try:
            await hold.keeper.fence(hold)
        except BaseException:
            sem.release()
            raise

    def _metrics(self, cloud: str, operation: str, outcome: str) -> tuple[Counter, Histogram]:
        """The labelled children of the cloud call metrics (looked up once per label set)."""
        key = (cloud, operation, outcome)
        found = self._call_metrics.get(key)
        if found is None:
            labels = {"cloud": cloud, "operation": operation, "outcome": outcome}
            found = (CLOUD_CALLS.labels(**labels), CLOUD_CALL_SECONDS.labels(**labels))
            self._call_metrics[key] = found
        return found

    def backoff(self, retries: int) -> float:
        """Exponential backoff with jitter: base * 2^retries, capped, times U(0.5, 1)."""
        c = self.settings.controllers
        delay = min(c.backoff_max_seconds, c.backoff_base_seconds * 2.0 ** min(retries, 30))
        return delay * (0.5 + self.rng.random() / 2)

    def later(self, seconds: float) -> datetime:
        return self.clock.now() + timedelta(seconds=seconds)


def _outcome(e: CloudError) -> str:
    if isinstance(e, CloudAuthError):
        return "auth"
    if isinstance(e, CapacityError):
        return "capacity"
    if isinstance(e, CloudQuotaError):
        return "cloud_quota"
    if isinstance(e, TransientError):
        return "transient"
    return "error"
