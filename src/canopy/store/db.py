"""Engine and unit of work. One transaction per request or controller step; commit at the edge.

SQLite runs in WAL mode with a single writer: write transactions start with
`BEGIN IMMEDIATE` and, inside one process, queue on an asyncio lock instead of spinning in
SQLite's busy handler; the API's writes queue behind the controllers' (store/write_lock.py).
PostgreSQL uses row locks (`FOR UPDATE`, `SKIP LOCKED`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool

from canopy.store import regexp
from canopy.store.loop_share import HOLDING
from canopy.store.plain_reads import PlainReads
from canopy.store.sqlite_inline import inline_creator
from canopy.store.wal_checkpoints import BACKSTOP, Checkpointer
from canopy.store.write_lock import WriteLock


class Database:
    """Owns the engine; hands out sessions that are one transaction each."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, pool_timeout: float = 30.0
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        memory = (parsed.database or ":memory:") == ":memory:"
        if not (self.is_sqlite and memory):  # an in-memory database has one connection
            kwargs["pool_timeout"] = pool_timeout
        if self.is_sqlite:
            # Statements run on the event loop's thread, not in one thread per connection
            # (see store/sqlite_inline.py for why, and why that is safe).
            kwargs["async_creator"] = inline_creator(parsed.database or ":memory:")
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        path = parsed.database or ""
        a_file = self.is_sqlite and path not in ("", ":memory:") and not path.startswith("file:")
        if self.is_sqlite:
            _sqlite_pragmas(self.engine, checkpointed=a_file)
        self._write_lock = WriteLock() if self.is_sqlite else None
        self.writing = 0  # write transactions open in this process (SQLite: at most one)
        # List pages' reads straight on SQLite (store/plain_reads.py); a file only, since
        # an in-memory database is private to its connection.
        self.plain_reads = PlainReads(path, self.engine.dialect) if a_file else None
        # WAL checkpoints off the loop (store/wal_checkpoints.py), a file's only.
        self.checkpoints = Checkpointer(path, self._write_lock) if a_file else None
        # Whether SQLite's trigram index of names is here (store/name_trigrams.py): read
        # once, by the first list that could use it (services/server_queries.py).
        self.name_trigrams: bool | None = None if self.is_sqlite else False
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads begin a plain (deferred) transaction; SQLite's writes, BEGIN IMMEDIATE.
        self.read_engine: AsyncEngine = self.engine.execution_options(canopy_readonly=True)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def pool_size(self) -> int:
        """The connections the pool keeps (it may open as many again, for a while)."""
        pool = self.engine.pool
        return pool.size() if isinstance(pool, QueuePool) else 1

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def session(self, *, admission: bool = False) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed if the block ends normally, else rolled back.

        `admission`: a request admitting new work; on SQLite it waits for the lock behind
        the controllers' transactions (store/write_lock.py).
        """
        lock = self._write_lock
        if lock is not None:
            await lock.acquire(admission=admission)
        self.writing += 1
        holding = HOLDING.set(lock)  # no pause while other writes wait (loop_share.py)
        try:
            async with self._closing(self._sessions) as s, s.begin():
                yield s
        finally:
            with contextlib.suppress(ValueError):  # finalized outside the task that set it
                HOLDING.reset(holding)
            self.writing -= 1
            if lock is not None:
                lock.release()
        if self.checkpoints is not None:
            self.checkpoints.wrote()  # committed

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction; on SQLite it never takes the write lock."""
        async with self._closing(self._read_sessions) as s, s.begin():
            yield s

    @asynccontextmanager
    async def _closing(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        """A session, closed when the block ends.

        SQLAlchemy's own `async with session` closes it in a task of its own, shielded, so
        that a cancellation cannot cut the close short: the caller waits three turns of the
        loop for it (the task's first step, its end, the shield's answer), behind every
        callback ready meanwhile. Under load that was a third of a slow `/healthz` answer, and
        on SQLite a write transaction held the write lock across those turns (it is let go
        after the block). Once `s.begin()`'s exit has committed or rolled back, the session
        holds no connection and its close only lets go of its objects: nothing in it
        suspends, so no cancellation can land in it, and it is awaited directly, on either
        database: a failed commit, a lost connection and a cancellation all end the
        transaction inside `s.begin()`'s exit. A session whose exit broke off before the
        transaction ended (a failing `after_commit` hook, say) is closed the shielded way:
        that close may have a rollback to do.
        """
        s = sessions()
        try:
            yield s
        finally:
            if s.in_transaction():
                await s.__aexit__(None, None, None)  # SQLAlchemy's shielded close
            else:
                await s.close()

    async def ping(self) -> None:
        """One round trip (SELECT 1) through the read engine. Closing a connection gives it
        back to the pool with a rollback: on SQLite on the loop's thread, never pausing, so
        awaited in place (see `_closing`); on PostgreSQL over the network, so shielded."""
        conn = await self.read_engine.connect()
        try:
            await conn.execute(text("SELECT 1"))
        finally:
            if self.is_sqlite:
                await conn.close()
            else:
                await conn.__aexit__(None, None, None)  # SQLAlchemy's shielded close

    async def dispose(self) -> None:
        if self.plain_reads is not None:
            self.plain_reads.close()
        await self.engine.dispose()
        if self.checkpoints is not None:
            await self.checkpoints.close()


def _sqlite_pragmas(engine: AsyncEngine, *, checkpointed: bool) -> None:
    """Every connection's settings; `checkpointed`: a `Checkpointer` runs this file's
    checkpoints, so a commit does one only past the backstop."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is too lazy).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=0")  # waits for the lock happen in sqlite_inline
        if checkpointed:  # in a thread (store/wal_checkpoints.py)
            cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP}")
        cur.close()
        # Statements run on the event loop: a user's pattern must not backtrack there.
        regexp.register_sqlite(dbapi_conn)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("canopy_no_begin"):
            return  # a PRAGMA that only works outside a transaction (store/migrate.py)
        if options.get("canopy_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
