"""Password hashing (Argon2id) and the bounded pool of threads it runs in.

Argon2 is memory-hard on purpose (~30 ms and 19 MiB per check), so it never runs on the
event loop and never inside an open write transaction. It runs in a `PasswordPool`: at most
`threads` checks at once, each in a thread of its own (not the default executor, which the
database driver and other parts share), and at most `queue` more waiting. A request beyond
that is refused at once with `Overloaded` (503 with Retry-After) instead of waiting without
bound, so a flood of bad logins costs a few cores' worth of hashing and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import threading
from collections.abc import Callable
from typing import NewType, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from canopy.domain.errors import Overloaded

T = TypeVar("T")

PasswordHash = NewType("PasswordHash", str)
"""An Argon2 encoded hash (or `UNUSABLE`): never a plain password."""

# A user who has no password (created without one) holds this; no password matches it.
UNUSABLE = PasswordHash("!")

# OWASP's Argon2id floor (19 MiB, 2 passes): memory-hard, ~20-40 ms per check here.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> PasswordHash:
    """The Argon2id hash of `password` (CPU-heavy: in the API, use `PasswordPool.hash`)."""
    return PasswordHash(_hasher.hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash` (CPU-heavy: see `PasswordPool.verify`)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (then rehash on login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return False


def usable(password_hash: str) -> bool:
    """Whether some password could match this hash (it is a well-formed Argon2 hash)."""
    return password_hash.startswith("$argon2")


@functools.cache
def dummy_hash() -> PasswordHash:
    """Checked against when there is no usable hash (unknown user, no password), so such a
    login costs as much time as a wrong password and the cases cannot be told apart."""
    return hash_password(secrets.token_urlsafe(16))


class PasswordPool:
    """Runs Argon2 in at most `threads` threads at once, with at most `queue` waiting."""

    def __init__(self, threads: int, queue: int, *, retry_after: int = 1) -> None:
        self.threads = threads
        self.queue = queue
        self.retry_after = retry_after
        self._slots = asyncio.Semaphore(threads)
        self._admitted = 0  # running + waiting for a slot
        self.running = 0  # threads at work now (for tests and metrics)
        self.peak = 0

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches; an unusable hash is checked against a dummy one."""
        if not usable(password_hash):
            await self._run(functools.partial(verify_password, dummy_hash(), password))
            return False
        return await self._run(functools.partial(verify_password, password_hash, password))

    async def hash(self, password: str) -> PasswordHash:
        return await self._run(functools.partial(hash_password, password))

    async def _run(self, call: Callable[[], T]) -> T:
        if self._admitted >= self.threads + self.queue:
            raise Overloaded(
                "Too many password checks are in progress; try again shortly.",
                retry_after=self.retry_after,
            )
        self._admitted += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self._admitted -= 1
            raise
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        # Mark an error as seen even if the caller stopped waiting for it.
        done.add_done_callback(lambda f: f.cancelled() or f.exception())

        def finished(result: T | None, error: BaseException | None) -> None:
            # On the loop when the thread ends, even if the caller stopped waiting: a slot
            # is free only when its thread really is, and before the caller sees the result.
            self.running -= 1
            self._admitted -= 1
            self._slots.release()
            _settle(done, result, error)

        def work() -> None:
            outcome: tuple[T | None, BaseException | None]
            try:
                outcome = (call(), None)
            except BaseException as e:  # handed to the waiting coroutine
                outcome = (None, e)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(finished, *outcome)

        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            threading.Thread(target=work, name="canopy-argon2", daemon=True).start()
        except BaseException as e:
            finished(None, e)
            raise
        return await asyncio.shield(done)


def _settle(fut: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)  # type: ignore[arg-type]
