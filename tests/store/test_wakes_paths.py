"""Every writer's wake takes one path: `waking_session` (the API's requests, the CLI's
commands) wakes the other processes only once it has committed, and a worker's `send`
reaches the other workers but never itself. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from canopy.domain.wake import Wake
from canopy.store.db import Database
from canopy.store.wakes import decode, encode, wake_after_commit, wake_channel, waking_session
from canopy.store.wakes_pg import PostgresWakes
from canopy.store.wakes_unix import UnixWakes

from .test_wakes import listening, send, woken


def test_a_name_may_carry_the_cloud_it_is_for() -> None:
    assert decode(encode(["sync:aws-us-east-1", "placement"])) == (
        "placement",
        "sync:aws-us-east-1",
    )
    assert decode("sync:a b") == ()  # not a cloud's name: every loop
    assert decode("sync:") == ()
    assert decode("a-b:public") == ()


async def test_a_waking_session_wakes_here_and_elsewhere_only_once_committed(
    db: Database,
) -> None:
    channel = wake_channel(db)
    assert isinstance(channel, UnixWakes | PostgresWakes)
    writer = Database(db.url)  # the writing process's own engine and channel
    out = wake_channel(writer)
    here = Wake()
    try:
        async with listening(channel) as (elsewhere, _):
            with pytest.raises(RuntimeError):
                async with waking_session(writer, out, here) as s:
                    await s.execute(text("SELECT 1"))
                    wake_after_commit(s, "placement")
                    raise RuntimeError("rolled back")
            assert not here.is_set()
            async with waking_session(writer, out, here) as s:
                await s.execute(text("SELECT 1"))
                wake_after_commit(s, "inventory")
                wake_after_commit(s, "placement")
            assert here.take() == ("inventory", "placement")
            # Delivered in order: had the rolled-back one gone out, it would be here too.
            assert await woken(elsewhere) == ("inventory", "placement")
            async with waking_session(writer, out, here) as s:
                await s.execute(text("SELECT 1"))  # asked for nothing: wakes no one
            assert not here.is_set()
    finally:
        if out is not None:
            out.close()
        await writer.dispose()


async def test_a_workers_send_reaches_the_others_and_not_itself(db: Database) -> None:
    one, other = wake_channel(db), wake_channel(Database(db.url))
    assert isinstance(one, UnixWakes | PostgresWakes)
    assert isinstance(other, UnixWakes | PostgresWakes)
    api = Database(db.url)
    try:
        async with listening(one) as (mine, _), listening(other) as (theirs, _):
            one.send(["sync:private"])
            assert await woken(theirs) == ("sync:private",)
            await send(api, "placement")  # after it, in order: anything sent to `one`
            assert await woken(mine) == ("placement",)
            assert await woken(theirs) == ("placement",)
        one.send(["sync:private"])  # no longer listening: sends nothing, raises nothing
        await asyncio.sleep(0)
    finally:
        one.close()
        other.close()
        await api.dispose()
