"""Wakes across processes: the API's "there is work" reaches workers in other processes.

In one process (`canopy up`) the API sets the worker's `Wake` directly. When the API and
the worker are separate processes, the API sends the names of the loops it has work for
through the database's own means, and every worker process listens:

- PostgreSQL: `NOTIFY canopy_wake, 'placement'` in the write transaction itself, so it is
  delivered exactly when (and only if) the transaction commits; each worker `LISTEN`s on
  a dedicated connection (store/wakes_pg.py).
- SQLite (one machine): a datagram to each worker's Unix socket in `<database file>-wake/`,
  sent after the commit (store/wakes_unix.py).

A wake is a hint, never a duty: a worker that misses one (restarting, reconnecting, a full
socket buffer) finds the work at its next poll (`[controllers] poll_seconds`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.wake import Wake
from canopy.store.db import Database

PAYLOAD_LIMIT = 1000  # bytes: loop names are short; anything longer wakes every loop


def encode(loops: Sequence[str]) -> str:
    """The loop names as one payload: "placement,sync"; "" is every loop."""
    payload = ",".join(sorted(set(loops)))
    return "" if len(payload) > PAYLOAD_LIMIT else payload


def decode(payload: str) -> tuple[str, ...]:
    """The loop names in a payload (empty: every loop). Anything odd wakes every loop."""
    names = tuple(n for n in payload.split(",") if n)
    if any(not n.isidentifier() for n in names):
        return ()
    return names


class WakeChannel(Protocol):
    """How an API process wakes the workers of other processes, and how they listen."""

    async def before_commit(self, s: AsyncSession, loops: Sequence[str]) -> None:
        """Called in the write transaction that made the work, just before its commit."""

    def after_commit(self, loops: Sequence[str]) -> None:
        """Called once that transaction has committed (never blocks)."""

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
