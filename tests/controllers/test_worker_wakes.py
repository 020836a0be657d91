"""Wakes between workers: a create recorded on a cloud tells the other workers (the one
holding that cloud's sync job may be one of them), and a worker told so asks for that
cloud's passes as the recording worker does for itself."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.wake import Wake

from .harness import make_plane
from .test_worker import CLOUDS, _true, _until


class Told:
    """A wake channel that records what a worker tells the others."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []

    async def before_commit(self, s: AsyncSession, loops: Sequence[str]) -> None:
        return None

    def after_commit(self, loops: Sequence[str]) -> None:
        return None

    def send(self, loops: Sequence[str]) -> None:
        self.sent.append(tuple(loops))

    def close(self) -> None:
        return None

    async def listen(self, wake: Wake, stop: asyncio.Event) -> None:
        await stop.wait()


async def test_a_recorded_create_tells_the_other_workers_which_cloud_to_sync(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    told = Told()
    p.rt.channel = told
    try:
        await p.create(2)
        await p.worker.placement.run_once()
        assert told.sent == []  # placing is this worker's own pipeline: nothing said
        await p.run_until(lambda: _true(bool(told.sent)), advance=0.1)
        assert told.sent == [("sync:private",)]  # once for the batch, not once per server
    finally:
        await p.close()


async def test_a_worker_told_of_a_create_asks_for_that_clouds_passes(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    woke: list[tuple[str, ...]] = []
    p.rt.notify = lambda *loops: woke.append(loops)  # type: ignore[method-assign]
    stop = asyncio.Event()
    relay = asyncio.create_task(p.worker._relay(stop))
    try:
        now = p.clock.now()
        assert not p.rt.sync_soon.firsts()
        p.rt.wake.ask("sync:private", "sync:nowhere", "placement")
        await _until(lambda: _true(bool(woke)))
        assert woke == [("placement", "sync")]
        asked = p.rt.sync_soon.firsts()
        assert list(asked) == ["private"]  # a cloud this worker does not drive: nothing
        c = p.settings.controllers
        soon = min(c.sync_seconds, c.sync_converging_seconds)
        assert now < asked["private"] <= now + timedelta(seconds=soon)
    finally:
        relay.cancel()
        await p.close()


async def test_a_failed_read_for_a_told_cloud_does_not_stop_the_relay(
    db_url: str, tmp_path: Path
) -> None:
    """The relay now reads the database (the cloud's boot history, for a "sync:<cloud>"
    wake) and nothing catches what that read raises: one failed read (the database
    restarting, a lost connection) ends the relay task, and from then on no wake from
    the API or another worker reaches this worker's loops (they wait for their polls),
    and the stop re-raises it from `Worker.run`'s clean-up. A wake is a hint: a failure
    to act on one must not end the relaying of the next."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    woke: list[tuple[str, ...]] = []
    p.rt.notify = lambda *loops: woke.append(loops)  # type: ignore[method-assign]
    failures: list[Exception] = [OperationalError("SELECT", {}, Exception("server closed"))]

    async def looks(db: object, cloud: str, *, at: object = None) -> list[float]:
        if failures:
            raise failures.pop()
        return []

    p.rt.boots.looks = looks  # type: ignore[method-assign]
    stop = asyncio.Event()
    relay = asyncio.create_task(p.worker._relay(stop))
    try:
        p.rt.wake.ask("sync:private")
        await _until(lambda: _true(not failures))  # the failing read happened
        p.rt.wake.ask("placement")
        await _until(lambda: _true(any("placement" in w for w in woke)), seconds=2.0)
        assert not relay.done()
    finally:
        relay.cancel()
        await p.close()
