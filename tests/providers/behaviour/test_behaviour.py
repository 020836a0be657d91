"""One behaviour suite for every driver: the same tests on the sim (Nova-like and atomic),
EC2 on moto's server and a genuine Nova, each driven through the whole control plane.

Life cycle and power actions; a create whose answer died with its worker is adopted,
never repeated; a tagged server no row wants is collected; an untagged server is left
alone; a server deleted out of band is noticed; no room in one zone moves the server to
another zone of the cloud, and no room anywhere in it to the next cloud."""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from tests.controllers.harness import Plane
from tests.providers.behaviour.backends import CLOUD, Backend

pytestmark = pytest.mark.slow


async def until(
    p: Plane, b: Backend, done: Callable[[], Awaitable[bool]], *, steps: int = 300
) -> None:
    """Step the plane (one fake second a step) until `done`; a real cloud gets real time."""
    for _ in range(steps):
        if await done():
            return
        await p.step(1.0)
        await b.settle()
    raise AssertionError(f"did not converge in {steps} steps on {b.name}: waited for {done}")


class Status:
    """`done` for `until`: the server shows `want`; says where it stands when it does not."""

    def __init__(self, p: Plane, sid: str, want: str) -> None:
        self.p, self.sid, self.want, self.last = p, sid, want, ""

    async def __call__(self) -> bool:
        s = await self.p.service.get(self.p.ctx, self.sid)
        self.last = f"{s.status} on {s.cloud} ({s.fault_message})"
        return s.status == self.want

    def __str__(self) -> str:
        return f"server {self.sid} to be {self.want}; last seen {self.last}"


def status(p: Plane, sid: str, want: str) -> Status:
    return Status(p, sid, want)


async def tagged(b: Backend, canopy_id: str) -> list[str]:
    return [r.remote_id for r in await b.live() if r.canopy_id == canopy_id]


async def test_life_cycle_and_power_actions(plane: Plane, backend: Backend) -> None:
    p, b = plane, backend
    [sid] = await p.create(1, name="life")
    await until(p, b, status(p, sid, "ACTIVE"))
    server = await p.service.get(p.ctx, sid)
    assert server.cloud == CLOUD
    assert await tagged(b, sid) == [server.remote_id]

    await p.service.stop(p.ctx, sid)
    await until(p, b, status(p, sid, "SHUTOFF"))
    await p.service.start(p.ctx, sid)
    await until(p, b, status(p, sid, "ACTIVE"))
    await p.service.reboot(p.ctx, sid)
    await until(p, b, status(p, sid, "ACTIVE"))

    await p.service.delete(p.ctx, sid)
    await until(p, b, status(p, sid, "DELETED"))

    async def gone() -> bool:
        return await tagged(b, sid) == []

    await until(p, b, gone)


async def test_a_listing_in_pages_shows_each_server_once(plane: Plane, backend: Backend) -> None:
    """`list_page` from the first page to the last: every canopy server on one page, the
    same servers `list` gives; changes-since pages too (with deleted ones)."""
    p, b = plane, backend
    ours = await p.rt.installation_id()
    made = [
        await b.oob_create(str(uuid.uuid4()), f"paged-{n}", installation=ours) for n in range(6)
    ]
    # Nova's listing is stable only once its scheduler has placed them; while it has not,
    # a page may repeat a server or leave one out, and sync copes (test_sync_pages.py).
    await b.placed(made)
    driver = p.rt.driver(CLOUD)
    # A day back on both clocks: the sim's (the plane's) and a real cloud's.
    since = min(p.clock.now(), datetime.now(UTC)) - timedelta(days=1)
    try:
        for changes_since in (None, since):
            seen: list[str] = []
            pages, marker = 0, cast(str | None, None)
            while True:
                page = await driver.list_page(changes_since, marker, 2)
                pages += 1
                if b.name != "ec2":  # moto answers DescribeTags whole, whatever MaxResults
                    assert len(page.servers) <= 2
                seen += [r.remote_id for r in page.servers]
                if page.next is None:
                    break
                marker = page.next
            assert pages >= 2 or b.name == "ec2"  # paged by a stand-in: tests/providers/ec2
            assert len(seen) == len(set(seen))  # on one page each
            assert set(made) <= set(seen)
            assert set(seen) == {r.remote_id for r in await driver.list(changes_since)}
    finally:
        for rid in made:
            await b.oob_delete(rid)


class Killed(BaseException):
    """The worker died after the cloud answered and before the answer was written (a
    BaseException: no handler of the runtime's sees it, as none would see a SIGKILL)."""


async def test_a_create_whose_worker_died_before_recording_it_is_not_repeated(
    plane: Plane, backend: Backend
) -> None:
    p, b = plane, backend
    driver = p.rt.drivers[CLOUD]
    real_create = driver.create
    answered: list[str] = []

    async def create_then_die(spec: Any) -> Any:
        remote = await real_create(spec)
        answered.append(remote.remote_id)
        raise Killed

    driver.create = create_then_die  # type: ignore[method-assign]
    [sid] = await p.create(1, name="orphan")
    for _ in range(20):
        if answered:
            break
        await p.step(0.5)
        await b.settle()
    assert len(answered) == 1, "the first worker's create never reached the cloud"
    driver.create = real_create  # type: ignore[method-assign]

    # Another worker, once the dead one's lease is over, carries the row on: its create
    # finds the server by canopy id, or its sync adopts it first.
    other = Worker(
        Runtime(
            db=p.db,
            settings=p.settings,
            drivers=p.rt.drivers,
            clock=p.clock,
            worker_id="second-worker",
            rng=random.Random(3),
        )
    )
    p.clock.advance(p.settings.controllers.lease_seconds + 1)
    for _ in range(300):
        if (await p.service.get(p.ctx, sid)).status == "ACTIVE":
            break
        await other.step()
        p.clock.advance(1.0)
        await b.settle()
    server = await p.service.get(p.ctx, sid)
    assert server.status == "ACTIVE"
    assert server.remote_id == answered[0]
    assert await tagged(b, sid) == answered  # one server: adopted, not made again


async def test_a_tagged_server_no_row_wants_is_collected_and_others_are_left(
    plane: Plane, backend: Backend
) -> None:
    """Collected: this installation's tag, a canopy id no row wants. Left alone: an
    untagged server, and one another canopy installation on the same account made."""
    p, b = plane, backend
    [sid] = await p.create(1, name="kept")
    await until(p, b, status(p, sid, "ACTIVE"))
    ours = await p.rt.installation_id()
    leak = await b.oob_create(str(uuid.uuid4()), "stray", installation=ours)
    untagged = await b.oob_create(None, "operators-own")
    theirs = await b.oob_create(str(uuid.uuid4()), "neighbours", installation=str(uuid.uuid4()))

    async def collected() -> bool:
        return leak not in {r.remote_id for r in await b.live()}

    await until(p, b, collected, steps=60)
    # Several more full syncs: the operator's own server and canopy's stay.
    for _ in range(5):
        await p.step(1.0)
        await b.settle()
    live = {r.remote_id for r in await b.live()}
    server = await p.service.get(p.ctx, sid)
    assert {untagged, theirs, server.remote_id} <= live
    assert server.status == "ACTIVE"
    await b.oob_delete(untagged)
    await b.oob_delete(theirs)


async def test_a_server_deleted_out_of_band_is_noticed(plane: Plane, backend: Backend) -> None:
    p, b = plane, backend
    [sid] = await p.create(1, name="doomed")
    await until(p, b, status(p, sid, "ACTIVE"))
    server = await p.service.get(p.ctx, sid)
    assert server.remote_id is not None
    await b.oob_delete(server.remote_id)
    await until(p, b, status(p, sid, "ERROR"), steps=60)
    server = await p.service.get(p.ctx, sid)
    assert server.fault_message is not None
    assert "deleted outside canopy" in server.fault_message
    await p.service.delete(p.ctx, sid)
    await until(p, b, status(p, sid, "DELETED"))


async def test_no_room_in_one_zone_moves_the_server_to_another_zone(
    plane: Plane, backend: Backend
) -> None:
    if len(backend.zones) < 2:
        pytest.skip(
            f"{backend.name} has one zone here ({backend.zones}): see the next test, and "
            "test_nova_zones.py for a Nova with two"
        )
    await moves_to_another_zone(plane, backend)


async def moves_to_another_zone(p: Plane, b: Backend) -> dict[str, Any]:
    """Fill one of the cloud's zones: servers refused there boot in another of its zones.
    Returns the attempt the full zone refused."""
    full, free = b.zones[0], b.zones[1]
    b.fill([full])
    # A server's zone is picked from its id, so one at a time until one was sent to the
    # full zone first (each has an even chance; after that refusal the zone is blocked
    # and the rest go straight to the free one): the test shows a failover, not luck.
    # One that went straight to the free zone is deleted, so that the free zone's room
    # (8 servers on the real Nova) never runs out before the 16 tries (a 1 in 65,536
    # chance that none was sent to the full zone first).
    ids: list[str] = []
    refused: list[dict[str, Any]] = []
    while not refused and len(ids) < 16:
        [sid] = await p.create(1, name=f"zoned-{len(ids)}")
        ids.append(sid)
        await until(p, b, status(p, sid, "ACTIVE"))
        server = await p.service.get(p.ctx, sid)
        assert (server.cloud, server.zone) == (CLOUD, free), (ids, server.attempt_log)
        refused = [a for a in server.attempt_log if a.get("zone") == full]
        if not refused:
            await p.service.delete(p.ctx, sid)
            await until(p, b, status(p, sid, "DELETED"))
    assert refused and refused[0]["cloud"] == CLOUD, ids
    assert "capacity" in refused[0]["error"], refused
    assert await tagged_all(b, ids) == ids[-1:]
    return refused[0]


async def tagged_all(b: Backend, ids: list[str]) -> list[str]:
    return [r.canopy_id for r in await b.live() if r.canopy_id in ids]  # type: ignore[misc]


async def test_no_room_anywhere_in_the_cloud_moves_the_server_to_the_next_cloud(
    plane: Plane, backend: Backend
) -> None:
    p, b = plane, backend
    flavor = b.huge_flavor or "m1.small"
    if b.huge_flavor is None:
        b.fill(None)
    [sid] = await p.create(1, name="spilled", flavor=flavor)
    await until(p, b, status(p, sid, "ACTIVE"))
    server = await p.service.get(p.ctx, sid)
    assert server.cloud == "spare"
    assert await tagged(b, sid) == []  # nothing left behind on the full cloud
