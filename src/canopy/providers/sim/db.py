"""The SQLite file behind one sim cloud: its schema, and connections to it.

The file outlives a crash of canopy, as a real cloud would, and several processes may
open it at once (two canopy workers sharing one sim cloud): WAL mode and `BEGIN IMMEDIATE`
for every read-then-write. A call is a short synchronous function run on the caller's
thread (the event loop), as canopy's own SQLite statements are (see
store/sqlite_inline.py): a hand-off to a thread would cost more than the call. The one
long wait, for another process's write lock, is not spent in SQLite: the busy timeout is
0, and a call that meets a locked file is run again after an asyncio sleep, for up to
`BUSY_SECONDS`. That is safe because the lock is met at `BEGIN IMMEDIATE`, before the
call has done anything (its transaction rolls back), or by a read, which may be repeated.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from canopy.domain.errors import TransientError
from canopy.providers.sim import creates
from canopy.providers.sim.options import SimSettings

T = TypeVar("T")

BUSY_SECONDS = 30.0  # how long a call waits for another process's write lock
# 2: keypairs, servers.key_name; 3: servers.user_data; 4: create_log; 5: hosts.zone, servers.zone
# 6: servers.installation
SCHEMA_VERSION = 6

_SCHEMA = (
    # used_* are the sums over the live servers on the host, kept in the same transaction
    # as every insert and delete so that placement reads one row per host.
    """CREATE TABLE IF NOT EXISTS hosts (
        id TEXT PRIMARY KEY,
        position INTEGER NOT NULL UNIQUE,
        vcpus INTEGER NOT NULL,
        ram_mb INTEGER NOT NULL,
        disk_gb INTEGER NOT NULL,
        used_vcpus INTEGER NOT NULL DEFAULT 0,
        used_ram_mb INTEGER NOT NULL DEFAULT 0,
        used_disk_gb INTEGER NOT NULL DEFAULT 0,
        used_instances INTEGER NOT NULL DEFAULT 0,
        zone TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS servers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        remote_id TEXT NOT NULL UNIQUE,
        canopy_id TEXT,
        name TEXT NOT NULL,
        host TEXT NOT NULL REFERENCES hosts(id),
        flavor TEXT,
        vcpus INTEGER NOT NULL,
        ram_mb INTEGER NOT NULL,
        disk_gb INTEGER NOT NULL,
        image TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        ready_at INTEGER NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0,
        power TEXT NOT NULL DEFAULT 'on',
        transition TEXT,
        transition_until INTEGER,
        updated_at INTEGER NOT NULL,
        deleted_at INTEGER,
        client_token TEXT,
        key_name TEXT,
        user_data TEXT,
        zone TEXT,
        installation TEXT
    )""",
    # Public keys imported into the cloud, by name, as a real cloud's key pairs.
    """CREATE TABLE IF NOT EXISTS keypairs (
        name TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    # The sim's record of every create call it answered (see creates.py).
    creates.SCHEMA,
    # No unique index on canopy_id: real clouds do not enforce unique tags, and tests need
    # to plant duplicates out of band (and a Nova-like cloud creates them: see
    # driver.create). An atomic create gets its uniqueness from its transaction.
    "CREATE INDEX IF NOT EXISTS servers_live_canopy_id ON servers(canopy_id) "
    "WHERE deleted_at IS NULL",
    # The lookup of a create's client token (EC2's ClientToken, in atomic mode).
    "CREATE INDEX IF NOT EXISTS servers_live_client_token ON servers(client_token) "
    "WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS servers_updated_at ON servers(updated_at)",
    "CREATE INDEX IF NOT EXISTS servers_ready_at ON servers(ready_at)",
    "CREATE INDEX IF NOT EXISTS servers_transition_until ON servers(transition_until)",
)


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring a state file written by an older canopy up to SCHEMA_VERSION, in place."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(servers)")}
    if "key_name" not in columns:  # version 1
        conn.execute("ALTER TABLE servers ADD COLUMN key_name TEXT")
    if "user_data" not in columns:  # version 2
        conn.execute("ALTER TABLE servers ADD COLUMN user_data TEXT")
    if "zone" not in columns:  # version 4
        conn.execute("ALTER TABLE servers ADD COLUMN zone TEXT")
    if "installation" not in columns:  # version 5
        conn.execute("ALTER TABLE servers ADD COLUMN installation TEXT")
    if "zone" not in {row[1] for row in conn.execute("PRAGMA table_info(hosts)")}:
        conn.execute("ALTER TABLE hosts ADD COLUMN zone TEXT NOT NULL DEFAULT ''")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that takes the file's write lock up front."""
    # IMMEDIATE, not DEFERRED: a deferred transaction that reads and then tries to write
    # can fail with SQLITE_BUSY without waiting, and two of them could both read "absent".
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class StateFile:
    """Connections to one sim cloud's SQLite file, created with its tables on first use."""

    def __init__(self, path: Path, settings: SimSettings, cloud: str) -> None:
        self.path = path
        self.settings = settings
        self.cloud = cloud
        self._lock = threading.Lock()
        self._init_lock = threading.Lock()
        self._initialised = False
        self._idle: list[sqlite3.Connection] = []
        # Bumped by close(): connections borrowed before it are closed when returned.
        self._generation = 0

    # Connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A new connection; a locked file fails at once (`call` does the waiting)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA foreign_keys = ON")
        # NORMAL is durable across a crash of the process in WAL mode; only power loss may
        # drop the last transactions, which is fine for a simulation.
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _initialise(self, conn: sqlite3.Connection) -> None:
        """Create the tables, and the hosts from settings unless the file already has some."""
        conn.execute("PRAGMA journal_mode = WAL")
        with immediate(conn):
            for statement in _SCHEMA:
                conn.execute(statement)
            _upgrade(conn)
            (count,) = conn.execute("SELECT COUNT(*) FROM hosts").fetchone()
            if count == 0:
                s = self.settings
                # Hosts are dealt round the zones in turn (h1 in the first zone, h2 in
                # the second, ...), so `hosts` is the total over every zone.
                zones = list(s.zones) or [""]
                conn.executemany(
                    "INSERT INTO hosts (id, position, vcpus, ram_mb, disk_gb, zone) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            f"h{i}", i, s.host_vcpus, s.host_ram_mb, s.host_disk_gb,
                            zones[(i - 1) % len(zones)],
                        )
                        for i in range(1, s.hosts + 1)
                    ],
                )  # fmt: skip
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _acquire(self) -> tuple[int, sqlite3.Connection]:
        """An idle connection or a new one, with the pool generation it belongs to."""
        with self._lock:
            generation = self._generation
            if self._idle:
                return generation, self._idle.pop()
        conn = self._connect()
        try:
            with self._init_lock:
                if not self._initialised:
                    self._initialise(conn)
                    self._initialised = True
        except BaseException:
            conn.close()
            raise
        return generation, conn

    def _release(self, generation: int, conn: sqlite3.Connection) -> None:
        """Give a connection back to the pool, or close it if close() ran meanwhile."""
        if conn.in_transaction:
            conn.rollback()
        with self._lock:
            if generation == self._generation:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def borrowed(self) -> Iterator[sqlite3.Connection]:
        """A connection of the pool, the caller's until the block ends (a read that gives
        the event loop back between its chunks keeps it that long)."""
        generation, conn = self._acquire()
        try:
            yield conn
        finally:
            self._release(generation, conn)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` with a connection; wait (without blocking) while another process writes."""
        deadline = time.monotonic() + BUSY_SECONDS
        delay = 0.001
        while True:
            try:
                with self.borrowed() as conn:  # at once: a locked file raises
                    return fn(conn)
            except sqlite3.OperationalError as e:
                if not _busy(e):
                    raise
                if time.monotonic() >= deadline:
                    # Another process held the write lock for too long: worth a retry later.
                    raise TransientError(
                        f"sim cloud {self.cloud!r}: state file busy: {e}", cloud=self.cloud
                    ) from e
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def close(self) -> None:
        """Close every idle connection; busy ones are closed when their call returns."""
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _busy(e: sqlite3.OperationalError) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(e) or "busy" in str(e)
