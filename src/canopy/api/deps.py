"""Dependencies for request handlers, as Annotated aliases that keep signatures short.

Everything comes from `app.state` (set by `create_app`); nothing here is global. A handler
gets one unit of work: `ReadSessionDep` is a read transaction, `SessionDep` a write
transaction committed when the handler returns, before the response is sent, so a failed
commit is the client's error response and never a lost write. Who the caller is, and what
they may do, is `canopy.api.auth`'s (which builds on this module, never the reverse).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.store.db import Database
from canopy.store.wakes import WakeChannel, waking_session
from canopy.store.wakes import wake_after_commit as wake_after_commit  # the handlers' name


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_wake(request: Request) -> asyncio.Event | None:
    wake: asyncio.Event | None = request.app.state.wake
    return wake


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only transaction for the whole request."""
    async with get_db(request).read() as s:
        yield s


async def write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A write transaction: committed when the handler returns, rolled back if it raises.

    If the handler called `wake_after_commit(s)`, the controllers are woken once the
    commit has succeeded, so they find the rows it wrote: in this process through `wake`,
    in the worker processes through the wake channel (store/wakes.py), if the app has one.
    """
    channel: WakeChannel | None = request.app.state.wake_channel
    async with waking_session(get_db(request), channel, get_wake(request), admission=True) as s:
        yield s


# The dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread
# pool, a hop (and a thread switch) per dependency per request that cost more CPU than
# a page's own rendering.
async def _settings(request: Request) -> Settings:
    return get_settings(request)


async def _db(request: Request) -> Database:
    return get_db(request)


async def _clock(request: Request) -> Clock:
    return get_clock(request)


async def _wake(request: Request) -> asyncio.Event | None:
    return get_wake(request)


SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_db)]
ClockDep = Annotated[Clock, Depends(_clock)]
WakeDep = Annotated[asyncio.Event | None, Depends(_wake)]
ReadSessionDep = Annotated[AsyncSession, Depends(read_session, scope="function")]
SessionDep = Annotated[AsyncSession, Depends(write_session, scope="function")]
