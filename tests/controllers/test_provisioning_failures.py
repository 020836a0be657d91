"""A create that got no answer may still land: the next attempt waits until it could have.

Nova has no client token: a create is a lookup by canopy id, then a create. A cloud
carries on with a request whose client gave up, so a create that timed out can land after
the caller's timeout; a retry whose lookup comes before that finds nothing and creates a
second server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from canopy.domain.errors import CloudAuthError, TransientError
from canopy.domain.specs import RemoteServer, ServerSpec
from canopy.providers.sim.creates import created_more_than_once
from canopy.store.models import Cloud, Server

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


ZONES = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
zones = ["a", "b"]
"""


async def test_an_attempt_after_one_whose_create_went_out_looks_before_it_creates(
    db_url: str, tmp_path: Path
) -> None:
    """Every answer to the first attempt's creates is lost (the first create landed), so
    the attempt fails when its retries run out and the server is placed again. The new
    attempt is no first attempt: it looks the canopy id up and finds the server, instead
    of creating a second one in the cloud (a second instance billed until sync collects
    it). It failed before: the failed attempt's unplacing forgot that a create went out."""
    controllers = {
        "max_transient_retries": 1,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.01,
        # No sync pass meanwhile: it would adopt the landed server before the retries run
        # out (which heals this too, when sync comes first).
        "sync_seconds": 3600.0,
        "sync_converging_seconds": 3600.0,
    }
    p = await make_plane(db_url, tmp_path, toml=ZONES, overrides={"controllers": controllers})
    try:
        sim = p.sim("private")
        real = sim.create
        lost = 0

        async def answers_lost(spec: ServerSpec) -> RemoteServer:
            nonlocal lost
            result: RemoteServer = await real(spec)
            if lost < 2:  # both tries of the first attempt: done, but no answer came
                lost += 1
                raise TransientError("the answer was lost", cloud="private")
            return result

        sim.create = answers_lost  # type: ignore[method-assign]
        await p.worker.sync.run_once(force=True)  # the first pass: the next is an hour on
        [sid] = await p.create()

        async def recorded() -> bool:
            async with p.db.read() as s:
                row = await s.get(Server, sid)
                return row is not None and row.remote_id is not None

        await p.run_until(recorded, advance=0.1)
        async with p.db.read() as s:
            row = await s.get(Server, sid)
        assert row is not None and row.attempts == 2, row and row.attempt_log
        assert [e.get("sent") for e in row.attempt_log] == [True]
        logs = await sim.create_log()
        assert created_more_than_once(logs) == {}
        assert sum(1 for r in logs if r.outcome == "created") == 1
        assert len(await sim.all_servers()) == 1
    finally:
        await p.close()


ONE_CLOUD = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 2
host_vcpus = 8
"""


async def test_a_create_lost_before_the_credentials_were_refused_is_looked_up_next_time(
    db_url: str, tmp_path: Path
) -> None:
    """The first create lands but its answer is lost; its retry is refused (the cloud's
    credentials were revoked). Refused credentials are no attempt: the server goes back to
    placement with nothing counted. The next attempt must still look the canopy id up
    before it creates: the first create may have landed (it did), and going back to
    placement used to forget that it went out."""
    controllers = {
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.01,
        "sync_seconds": 3600.0,  # no sync pass adopts the landed server meanwhile
        "sync_converging_seconds": 3600.0,
    }
    p = await make_plane(db_url, tmp_path, toml=ONE_CLOUD, overrides={"controllers": controllers})
    try:
        sim = p.sim("private")
        real = sim.create
        calls = 0

        async def lost_then_refused(spec: ServerSpec) -> RemoteServer:
            nonlocal calls
            calls += 1
            if calls == 1:
                await real(spec)  # it lands; the answer does not come back
                raise TransientError("the answer was lost", cloud="private")
            if calls == 2:
                raise CloudAuthError("the credentials were revoked", cloud="private")
            result: RemoteServer = await real(spec)
            return result

        sim.create = lost_then_refused  # type: ignore[method-assign]
        await p.worker.sync.run_once(force=True)
        [sid] = await p.create()

        async def refused() -> bool:
            return calls >= 2

        await p.run_until(refused, advance=0.1)
        async with p.db.session() as s:
            row = await s.get(Server, sid)
            assert row is not None and row.cloud is None  # back to placement
            assert [(e.get("sent"), e.get("uncounted")) for e in row.attempt_log] == [(True, True)]
            cloud = await s.get(Cloud, "private")
            assert cloud is not None and not cloud.healthy
            cloud.healthy = True  # an operator fixed the credentials (no sync pass here)

        async def recorded() -> bool:
            async with p.db.read() as s:
                row = await s.get(Server, sid)
                return row is not None and row.remote_id is not None

        await p.run_until(recorded, advance=0.1)
        logs = await sim.create_log()
        assert created_more_than_once(logs) == {}
        assert len(await sim.all_servers()) == 1
    finally:
        await p.close()
