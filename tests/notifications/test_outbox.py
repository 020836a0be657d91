"""Events are written in the transaction of the change they announce, and only then."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.notifications.events import server_payload
from canopy.notifications.outbox import emit
from canopy.reservations.service import LeaseService
from canopy.store.models import OutboxEvent, Server
from tests.controllers.harness import PRIVATE, Plane
from tests.reservations.helpers import CLOUDS, body

from .helpers import notify_plane


async def _events(p: Plane) -> list[tuple[str, str]]:
    async with p.db.read() as s:
        rows = await s.execute(
            select(OutboxEvent.event_type, OutboxEvent.subject).order_by(OutboxEvent.id)
        )
        return [(t, subj) for t, subj in rows]


class Boom(Exception):
    pass


async def test_an_event_is_committed_if_and_only_if_its_change_is(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path)
    try:
        with pytest.raises(Boom):
            async with p.db.session() as s:
                emit(s, "lease.create", "lease/x", "p", {}, at=p.clock.now())
                raise Boom
        assert await _events(p) == []
        async with p.db.session() as s:
            emit(s, "lease.create", "lease/y", "p", {}, at=p.clock.now())
        assert await _events(p) == [("lease.create", "lease/y")]
    finally:
        await p.close()


async def test_a_lease_create_that_fails_writes_no_event(db_url: str, tmp_path: Path) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS)
    try:
        svc = LeaseService(p.settings, p.clock, p.service)
        t0 = p.clock.now()
        start, end = t0 + timedelta(minutes=10), t0 + timedelta(minutes=70)
        async with p.db.session() as s:
            lease = await svc.create(s, p.ctx, body("a", start, end))
        with pytest.raises(Boom):
            async with p.db.session() as s:
                await svc.create(s, p.ctx, body("b", start, end))
                raise Boom  # e.g. the commit fails: the lease and its event go together
        async with p.db.session() as s:
            await svc.update(s, p.ctx, lease.id, {"name": "a2"})
        async with p.db.session() as s:
            await svc.delete(s, p.ctx, lease.id)
        subject = f"lease/{lease.id}"
        assert await _events(p) == [
            ("lease.create", subject),
            ("lease.update", subject),
            ("lease.delete", subject),
        ]
    finally:
        await p.close()


async def test_lease_events_and_the_heads_up_come_in_order(db_url: str, tmp_path: Path) -> None:
    p = await notify_plane(db_url, tmp_path, CLOUDS, lease_heads_up_seconds=120)
    try:
        svc = LeaseService(p.settings, p.clock, p.service)
        t0 = p.clock.now()
        start, end = t0 + timedelta(minutes=10), t0 + timedelta(minutes=70)
        async with p.db.session() as s:
            lease = await svc.create(s, p.ctx, body("a", start, end))
        notes = p.worker.notifications
        assert await notes.heads_up() == 0  # ten minutes ahead: not yet
        assert notes.next_due_in(p.clock.now()) is None  # no pass has run yet
        await notes.run_once()
        assert notes.next_due_in(p.clock.now()) == pytest.approx(480.0)
        p.clock.advance(480)
        assert await notes.heads_up() == 1
        assert await notes.heads_up() == 0  # once
        for _ in range(130):  # through the start, the before-end and the end
            await p.worker.leases.run_once()
            p.clock.advance(30)
        subject = f"lease/{lease.id}"
        assert await _events(p) == [
            ("lease.create", subject),
            ("lease.event.start_soon", subject),
            ("lease.event.start_lease", subject),
            ("lease.event.before_end_lease", subject),
            ("lease.event.end_lease", subject),
        ]
    finally:
        await p.close()


async def test_a_server_announces_its_create_stop_and_delete(db_url: str, tmp_path: Path) -> None:
    p = await notify_plane(db_url, tmp_path)
    try:
        [sid] = await p.create(1)

        async def status(want: str) -> bool:
            [sv] = [x for x in await p.servers() if x.id == sid]
            return sv.status == want

        await p.run_until(lambda: status("ACTIVE"))
        await p.service.stop(p.ctx, sid)
        await p.run_until(lambda: status("SHUTOFF"))
        await p.service.delete(p.ctx, sid)
        await p.run_until(lambda: status("DELETED"))
        subject = f"server/{sid}"
        assert await _events(p) == [
            ("compute.instance.create.end", subject),
            ("compute.instance.power_off.end", subject),
            ("compute.instance.delete.end", subject),
        ]
    finally:
        await p.close()


async def test_a_create_recorded_running_announces_the_server_as_stored(
    db_url: str, tmp_path: Path
) -> None:
    """A cloud that answers the create with a running server: provisioning records it
    ACTIVE and writes create.end from the row's columns (Core); the payload is what
    `server_payload` makes of the stored server."""
    p = await notify_plane(
        db_url, tmp_path, PRIVATE.replace("boot_seconds = 2", "boot_seconds = 0")
    )
    try:
        [sid] = await p.create(1, name="web", metadata={"role": "db", "tier": "1"})
        for _ in range(20):
            if await p.count(status="ACTIVE") == 1:
                break
            await p.worker.placement.run_once()
            await p.worker.provisioning.run_once()
            await p.worker.provisioning.drain()
        async with p.db.read() as s:
            server = (await s.execute(select(Server).where(Server.id == sid))).scalar_one()
            stored = [
                (kind, payload)
                for kind, payload in await s.execute(
                    select(OutboxEvent.event_type, OutboxEvent.payload).order_by(OutboxEvent.id)
                )
            ]
        # Recorded by provisioning, not seen later by a sync pass (none ran).
        assert server.status == "ACTIVE" and server.launched_at is not None
        assert stored == [("compute.instance.create.end", server_payload(server))]
        assert stored[0][1]["metadata"] == {"role": "db", "tier": "1"}
        assert stored[0][1]["state"] == "active" and stored[0][1]["host"] == "private"
    finally:
        await p.close()


HUGE = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 16384

[[flavors]]
name = "huge"
vcpus = 64
ram_mb = 1024
disk_gb = 1
"""


async def test_a_server_that_cannot_be_placed_announces_the_error(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path, HUGE)
    try:
        [sid] = await p.create(1, flavor="huge")
        await p.run_until(lambda: _has(p, "compute.instance.create.error"), steps=60, advance=30.0)
        async with p.db.read() as s:
            ev = (await s.execute(select(OutboxEvent))).scalars().one()
        assert ev.subject == f"server/{sid}"
        assert ev.payload["state"] == "error"
        assert "No valid host" in ev.payload["message"]
    finally:
        await p.close()


async def _has(p: Plane, kind: str) -> bool:
    return any(t == kind for t, _ in await _events(p))
