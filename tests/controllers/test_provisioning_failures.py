"""A create that got no answer may still land: the next attempt waits until it could have.

Nova has no client token: a create is a lookup by canopy id, then a create. A cloud
carries on with a request whose client gave up, so a create that timed out can land after
the caller's timeout; a retry whose lookup comes before that finds nothing and creates a
second server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from canopy.domain.specs import RemoteServer, ServerSpec
from canopy.providers.sim.creates import created_more_than_once
from canopy.store.models import Server

from .harness import make_plane

TIMEOUT = 0.3  # seconds of real time: the call timeout


async def test_a_create_that_got_no_answer_is_not_repeated_before_it_could_land(
    db_url: str, tmp_path: Path
) -> None:
    fast_backoff = {"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.01}
    controllers = {"call_timeout_seconds": TIMEOUT, **fast_backoff}
    p = await make_plane(db_url, tmp_path, overrides={"controllers": controllers})
    late: list[asyncio.Task[RemoteServer]] = []
    try:
        for name in ("private", "public"):
            sim = p.sim(name)
            real = sim.create

            async def answer_late(spec: ServerSpec, real: Any = real) -> RemoteServer:
                if late:  # only the first create is slow
                    result: RemoteServer = await real(spec)
                    return result

                async def lands() -> RemoteServer:
                    await asyncio.sleep(TIMEOUT * 2)  # the caller has given up by then
                    result: RemoteServer = await real(spec)
                    return result

                late.append(asyncio.ensure_future(lands()))
                return await asyncio.shield(late[0])

            sim.create = answer_late  # type: ignore[method-assign]

        [sid] = await p.create()
        sent = p.clock.now()  # the sim's latencies move the clock on from here
        await p.step(advance=0.0)  # placed, and its create sent: no answer in time
        assert len(late) == 1
        async with p.db.read() as s:
            row = await s.get(Server, sid)
            assert row is not None and row.retries == 1
            assert row.next_attempt_at is not None
            wait = (row.next_attempt_at - sent).total_seconds()
        assert wait >= TIMEOUT  # not the 0.01 s backoff (and the no answer came after `sent`)

        p.clock.advance(0.05)  # past the backoff, not past the landing window
        await p.step(advance=0.0)  # so no second lookup and create yet
        await asyncio.wait_for(late[0], 10)  # the first create lands
        p.clock.advance(TIMEOUT)

        async def recorded() -> bool:
            async with p.db.read() as s:
                row = await s.get(Server, sid)
                return row is not None and row.remote_id is not None

        await p.run_until(recorded, advance=0.1)
        logs = [r for c in ("private", "public") for r in await p.sim(c).create_log()]
        assert created_more_than_once(logs) == {}
        assert sum(1 for r in logs if r.outcome == "created") == 1
    finally:
        for t in late:
            t.cancel()
        await p.close()
