"""A command's write transaction, which wakes the running workers as the API's does.

A command that changes rows straight in the database (`canopy cloud add`, `canopy image
create`, `canopy subscription replay`, ...) asks for the loops its work is for with
`wake_after_commit`, as the API's handler for the same change does; once it has
committed, the workers of the running canopy are woken through the database's channel
(store/wakes.py): NOTIFY in the transaction on PostgreSQL, a datagram to each worker's
socket on SQLite. Without a worker listening nothing is sent, and a worker that misses
the wake finds the work at its next poll, as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.db import Database
from canopy.store.wakes import wake_channel, waking_session


@asynccontextmanager
async def write_session(db: Database) -> AsyncIterator[AsyncSession]:
    """A write transaction whose `wake_after_commit` asks reach the worker processes."""
    channel = wake_channel(db)
    try:
        async with waking_session(db, channel) as s:
            yield s
    finally:
        if channel is not None:
            channel.close()
