"""What every controller shares: leases, backoff with jitter, per-cloud concurrency, timeouts."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.domain.errors import CloudError, NotFound, TransientError
from canopy.providers.base import Compute
from canopy.store.db import Database

T = TypeVar("T")
log = logging.getLogger("canopy.controllers")


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Runtime:
    """The context a controller runs in. One per worker process."""

    db: Database
    settings: Settings
    drivers: dict[str, Compute]
    clock: Clock
    worker_id: str = field(default_factory=worker_identity)
    rng: random.Random = field(default_factory=random.Random)
    # Set from outside the controllers (the API after a commit): every loop looks for work.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _signals: dict[str, asyncio.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for cloud in self.settings.clouds:
            self._limits[cloud.name] = asyncio.Semaphore(cloud.concurrency)

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
        for c in self.settings.clouds:
            if c.name == cloud:
                return c.concurrency
        return 0

    async def call(self, cloud: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one cloud call under the cloud's concurrency limit and the call timeout.

        A timeout or an unexpected exception becomes a TransientError: the step is retried
        later with backoff, and since every step is idempotent a retry is always safe.
        """
        sem = self._limits.setdefault(cloud, asyncio.Semaphore(50))
        timeout = self.settings.controllers.call_timeout_seconds
        async with sem:
            try:
                async with asyncio.timeout(timeout):
                    return await fn()
            except TimeoutError:
                raise TransientError(f"no answer within {timeout:g}s", cloud=cloud) from None
            except CloudError:
                raise
            except (NotFound, asyncio.CancelledError):
                raise
            except Exception as e:  # a driver bug must not kill the worker
                log.exception("unexpected error from cloud %s", cloud)
                raise TransientError(f"{type(e).__name__}: {e}", cloud=cloud) from e

    def backoff(self, retries: int) -> float:
        """Exponential backoff with jitter: base * 2^retries, capped, times U(0.5, 1)."""
        c = self.settings.controllers
        delay = min(c.backoff_max_seconds, c.backoff_base_seconds * 2.0 ** min(retries, 30))
        return delay * (0.5 + self.rng.random() / 2)

    def later(self, seconds: float) -> datetime:
        return self.clock.now() + timedelta(seconds=seconds)
