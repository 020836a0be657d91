"""PostgreSQL wakes: NOTIFY in the transaction that made the work, LISTEN in each worker.

The notification is sent by the write transaction itself (`pg_notify` before its commit):
PostgreSQL delivers it at the commit and drops it at a rollback, so a worker is never woken
for rows it cannot see yet. Each worker process holds one dedicated connection (outside the
pool, so it never takes a request's slot) that LISTENs on `canopy_wake`. When it is lost
(a restart of the server, a network cut, found by the termination callback or by a
`SELECT 1` every CHECK_SECONDS), the listener reconnects with backoff; once back, it wakes
every loop once, for anything sent while it was away.

A worker tells the others (`send`) through that same connection, after its own commit:
no pool slot is taken, and the notifications it sent itself (its own backend's pid) are
not taken for wakes. While it has no connection, nothing is sent: the others poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from canopy.domain.wake import Wake
from canopy.store.wakes import decode, encode

log = logging.getLogger("canopy.wakes")
CHANNEL = "canopy_wake"
CHECK_SECONDS = 30.0  # how often an idle listening connection is proved alive
CHECK_TIMEOUT = 10.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


class PostgresWakes:
    def __init__(self, url: str) -> None:
        self.url = url
        self.connects = 0  # connections made (for tests and logs)
        self.listening = asyncio.Event()  # set while a connection LISTENs
        self._conn: Any = None  # the listening asyncpg connection, while there is one
        self._use = asyncio.Lock()  # one statement at a time on it
        self._sends: set[asyncio.Task[None]] = set()

    async def before_commit(self, s: AsyncSession, loops: Sequence[str]) -> None:
        await s.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": encode(loops)})

    def after_commit(self, loops: Sequence[str]) -> None:
        return None  # delivered by the commit itself

    def send(self, loops: Sequence[str]) -> None:
        if self._conn is None:
            return  # not listening (yet, or any more): the others find the work at polls
        task = asyncio.get_running_loop().create_task(self._notify(self._conn, encode(loops)))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _notify(self, conn: Any, payload: str) -> None:
        try:
            async with self._use:
                await asyncio.wait_for(
                    conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload), CHECK_TIMEOUT
                )
        except Exception as e:  # a hint: the listener finds a lost connection itself
            log.debug("wake not sent: %s: %s", type(e).__name__, e)

    def close(self) -> None:
        return None  # sends ride on the listening connection, closed by `listen`

    async def listen(self, wake: Wake, stop: asyncio.Event) -> None:
        engine = create_async_engine(self.url, poolclass=NullPool)
        backoff = BACKOFF_FIRST
        try:
            while not stop.is_set():
                try:
                    await self._listen_once(engine, wake, stop)
                    backoff = BACKOFF_FIRST
                except Exception as e:  # unreachable, refused, cut: retry after a while
                    log.warning("wake listener: %s: %s; retrying", type(e).__name__, e)
                if stop.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff * random.uniform(0.5, 1.0))
                backoff = min(BACKOFF_MAX, backoff * 2)
        finally:
            await engine.dispose()

    async def _listen_once(self, engine: Any, wake: Wake, stop: asyncio.Event) -> None:
        """Listen on one connection until it is lost or `stop`."""
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection  # the asyncpg connection
            lost = asyncio.Event()
            pg.add_termination_listener(lambda _c: lost.set())

            own = pg.get_server_pid()

            def on_notify(_c: Any, pid: int, _channel: str, payload: str) -> None:
                if pid != own:  # not one this worker sent the others
                    wake.ask(*decode(payload))

            await pg.add_listener(CHANNEL, on_notify)
            self.connects += 1
            self._conn = pg
            self.listening.set()
            if self.connects > 1:
                wake.ask()  # whatever was sent while no one listened here
            ended = asyncio.create_task(_first(stop, lost))
            try:
                while not ended.done():
                    done, _ = await asyncio.wait({ended}, timeout=CHECK_SECONDS)
                    if not done:
                        async with self._use:
                            await asyncio.wait_for(pg.execute("SELECT 1"), CHECK_TIMEOUT)
            finally:
                self._conn = None
                self.listening.clear()
                ended.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ended
            if lost.is_set() and not stop.is_set():
                raise ConnectionError("the listening connection was closed")


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
