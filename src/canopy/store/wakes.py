"""Wakes across processes: the API's "there is work" reaches workers in other processes.

In one process (`canopy up`) the API sets the worker's `Wake` directly. When the API and
the worker are separate processes, the API sends the names of the loops it has work for
through the database's own means, and every worker process listens:

- PostgreSQL: `NOTIFY canopy_wake, 'placement'` in the write transaction itself, so it is
  delivered exactly when (and only if) the transaction commits; each worker `LISTEN`s on
  a dedicated connection (store/wakes_pg.py).
- SQLite (one machine): a datagram to each worker's Unix socket in `<database file>-wake/`,
  sent after the commit (store/wakes_unix.py).

Every writer takes the same path (`waking_session`): the API's requests, the CLI's
commands that change rows, and a worker telling the others (`WakeChannel.send`, for work
only another worker can take: a pass over a cloud whose sync job it holds).

A wake is a hint, never a duty: a worker that misses one (restarting, reconnecting, a full
socket buffer) finds the work at its next poll (`[controllers] poll_seconds`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.wake import Wake
from canopy.store.db import Database

PAYLOAD_LIMIT = 1000  # bytes: loop names are short; anything longer wakes every loop


WAKE_KEY = "canopy_wake_controllers"  # in a session's `info`: the loops its commit wakes
# A name is a loop ("placement"), or a loop and the cloud it is for ("sync:public").
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z0-9][A-Za-z0-9._-]{0,62})?")


def encode(loops: Sequence[str]) -> str:
    """The loop names as one payload: "placement,sync:public"; "" is every loop."""
    payload = ",".join(sorted(set(loops)))
    return "" if len(payload) > PAYLOAD_LIMIT else payload


def decode(payload: str) -> tuple[str, ...]:
    """The loop names in a payload (empty: every loop). Anything odd wakes every loop."""
    names = tuple(n for n in payload.split(",") if n)
    if any(not _NAME.fullmatch(n) for n in names):
        return ()
    return names


def wake_after_commit(s: AsyncSession, *loops: str) -> None:
    """Ask for the controllers to be woken when this transaction commits: the loops
    named (a server create: "placement"), or every loop if none is named."""
    wanted: set[str] = s.info.setdefault(WAKE_KEY, set())
    wanted.update(loops or ("",))


@asynccontextmanager
async def waking_session(
    db: Database,
    channel: WakeChannel | None,
    wake: asyncio.Event | None = None,
    *,
    admission: bool = False,
) -> AsyncIterator[AsyncSession]:
    """A write transaction that wakes the loops asked for with `wake_after_commit`, once
    it has committed: in this process through `wake` (a worker here), in the worker
    processes through `channel`. A rolled-back write wakes no one."""
    async with db.session(admission=admission) as s:
        yield s
        wanted: set[str] | None = s.info.get(WAKE_KEY)
        if wanted is not None and channel is not None:
            await channel.before_commit(s, _names(wanted))
    loops: set[str] | None = s.info.get(WAKE_KEY)
    if loops is None:
        return
    names = _names(loops)
    if isinstance(wake, Wake):
        wake.ask(*names)
    elif wake is not None:
        wake.set()
    if channel is not None:
        channel.after_commit(names)


def _names(loops: set[str]) -> tuple[str, ...]:
    return () if "" in loops else tuple(sorted(loops))


class WakeChannel(Protocol):
    """How an API process wakes the workers of other processes, and how they listen."""

    async def before_commit(self, s: AsyncSession, loops: Sequence[str]) -> None:
        """Called in the write transaction that made the work, just before its commit."""

    def after_commit(self, loops: Sequence[str]) -> None:
        """Called once that transaction has committed (never blocks)."""

    def send(self, loops: Sequence[str]) -> None:
        """Wake the loops named in the other processes, for work already committed
        (a worker's own, after its transaction): never blocks, never raises, and never
        wakes the process that sends."""

    def close(self) -> None:
        """Release what sending holds (a socket)."""

    async def listen(self, wake: Wake, stop: asyncio.Event) -> None:
        """Until `stop`: ask `wake` for the loops other processes name. Never raises for a
        lost connection or socket; it retries, with backoff."""


def wake_channel(db: Database) -> WakeChannel | None:
    """The channel for `db`'s backend (None: none here; workers rely on their polls)."""
    if db.is_postgres:
        from canopy.store.wakes_pg import PostgresWakes

        return PostgresWakes(db.url)
    if db.is_sqlite and hasattr(socket, "AF_UNIX"):
        file = make_url(db.url).database
        if not file or file == ":memory:" or file.startswith("file:"):
            return None
        from canopy.store.wakes_unix import UnixWakes

        return UnixWakes(socket_dir(Path(file)))
    return None


# A Unix socket's path has at most 107 bytes on Linux (sun_path); a socket is named
# `<pid>-<8 hex>.sock` inside the directory (at most 30 bytes with the separator).
SOCKET_PATH_MAX = 107
SOCKET_NAME_MAX = 30


def socket_dir(database_file: Path) -> Path:
    """Where the workers of a SQLite database keep their wake sockets: beside the file,
    named as SQLite names its own companions (`canopy.db-wal`, `canopy.db-shm`). When that
    path is too long for a socket, a private directory in the temporary directory named
    for the user and the database file (the same for every process of that database):
    `/tmp` is sticky, so no one else can replace it, and it is checked like the other."""
    file = database_file.expanduser().absolute()
    beside = file.with_name(file.name + "-wake")
    if len(os.fsencode(beside)) + SOCKET_NAME_MAX <= SOCKET_PATH_MAX:
        return beside
    digest = hashlib.sha256(os.fsencode(file)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"canopy-wake-{os.geteuid()}-{digest}"
