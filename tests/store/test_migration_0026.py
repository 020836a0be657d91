"""Migration 0026 (flavor ids of up to 255 characters) goes down and up again with rows in
every column that holds a flavor id; going down refuses, changing nothing, while an id
no longer fits."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic.util import CommandError
from sqlalchemy import delete, inspect, select, update

from canopy.domain.clock import FakeClock
from canopy.reconcile import seed
from canopy.store import capacity_blocks
from canopy.store.db import Database
from canopy.store.migrate import current_revision, head_revision, upgrade
from canopy.store.models import (
    CapacityBlock,
    Flavor,
    FlavorMapping,
    FlavorProject,
    Lease,
    Reservation,
    Server,
)

from .helpers import server_row, settings
from .test_migration_0005 import _downgrade

# (table, column) of every flavor id, as the migration lists them.
COLUMNS = [
    ("flavors", "id"),
    ("servers", "flavor_id"),
    ("flavor_mappings", "flavor_id"),
    ("flavor_projects", "flavor_id"),
    ("capacity_blocks", "flavor_id"),
    ("reservations", "source_flavor_id"),
]
FIT = "f" * 64  # the longest id the old columns hold
LONG = "L" * 255


async def _widths(db: Database) -> dict[tuple[str, str], int | None]:
    async with db.engine.connect() as conn:

        def read(sync_conn: object) -> dict[tuple[str, str], int | None]:
            i = inspect(sync_conn)
            out: dict[tuple[str, str], int | None] = {}
            for table, column in COLUMNS:
                (col,) = [c for c in i.get_columns(table) if c["name"] == column]
                out[(table, column)] = getattr(col["type"], "length", None)
            return out

        return await conn.run_sync(read)


async def _uses(db: Database, fid: str, now: datetime, sid: str) -> None:
    """A flavor `fid` named in every column that can hold a flavor id."""
    async with db.session() as s:
        s.add(Flavor(id=fid, name=f"n-{sid}", vcpus=1, ram_mb=64, created_at=now))
        await s.flush()
        s.add(server_row(now, sid=sid, flavor_id=fid))
        s.add(FlavorMapping(cloud="public", flavor_id=fid, remote_flavor="r"))
        s.add(FlavorProject(flavor_id=fid, project_id="p1"))
        lease = Lease(
            id=f"lease-{sid}",
            project_id="p1",
            name=sid,
            start_at=now,
            end_at=now + timedelta(hours=1),
            status="PENDING",
            created_at=now,
            updated_at=now,
        )
        s.add(lease)
        await s.flush()
        s.add(
            Reservation(
                id=f"res-{sid}",
                lease_id=lease.id,
                resource_type="flavor:instance",
                status="pending",
                amount=1,
                vcpus=1,
                memory_mb=64,
                disk_gb=0,
                source_flavor_id=fid,
                created_at=now,
                updated_at=now,
            )
        )
        await capacity_blocks.block(
            s, cloud="public", zone=None, flavor_id=fid, until=now, reason="full"
        )


async def _drop(db: Database, fid: str, sid: str) -> None:
    async with db.session() as s:
        await s.execute(delete(Server).where(Server.id == sid))
        await s.execute(delete(Reservation).where(Reservation.id == f"res-{sid}"))
        await s.execute(delete(Lease).where(Lease.id == f"lease-{sid}"))
        await s.execute(delete(CapacityBlock).where(CapacityBlock.flavor_id == fid))
        await s.execute(delete(FlavorMapping).where(FlavorMapping.flavor_id == fid))
        await s.execute(delete(FlavorProject).where(FlavorProject.flavor_id == fid))
        await s.execute(delete(Flavor).where(Flavor.id == fid))


async def _named(db: Database, fid: str) -> dict[str, int]:
    """How many rows of each table name `fid`."""
    async with db.read() as s:
        counts = {
            "flavors": select(Flavor.id).where(Flavor.id == fid),
            "servers": select(Server.id).where(Server.flavor_id == fid),
            "flavor_mappings": select(FlavorMapping.cloud).where(FlavorMapping.flavor_id == fid),
            "flavor_projects": select(FlavorProject.project_id).where(
                FlavorProject.flavor_id == fid
            ),
            "capacity_blocks": select(CapacityBlock.zone).where(CapacityBlock.flavor_id == fid),
            "reservations": select(Reservation.id).where(Reservation.source_flavor_id == fid),
        }
        return {t: len(list(await s.scalars(q))) for t, q in counts.items()}


async def test_down_and_up_again_with_every_column_in_use(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    await seed(db, settings(str(tmp_path)), clock)
    await _uses(db, FIT, clock.now(), "fits")
    assert set((await _widths(db)).values()) == {255}
    try:
        await _downgrade(db, "0025")
        assert await current_revision(db) == "0025"
        assert set((await _widths(db)).values()) == {64}
        assert set((await _named(db, FIT)).values()) == {1}  # every row carried down
        await upgrade(db)
        assert await current_revision(db) == head_revision()
        assert set((await _widths(db)).values()) == {255}
        assert set((await _named(db, FIT)).values()) == {1}  # ... and up again
        # The widened columns take Nova's longest id (PostgreSQL would refuse 65 at 0025).
        await _uses(db, LONG, clock.now(), "long")
        assert set((await _named(db, LONG)).values()) == {1}
    finally:
        await upgrade(db)


async def test_going_down_refuses_ids_that_no_longer_fit(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    await seed(db, settings(str(tmp_path)), clock)
    await _uses(db, LONG, clock.now(), "long")
    # A reservation made from a flavor since deleted keeps its id: it is checked too.
    gone = "G" * 65
    async with db.session() as s:
        await s.execute(
            update(Reservation).where(Reservation.id == "res-long").values(source_flavor_id=gone)
        )
    with pytest.raises(CommandError) as refused:
        await _downgrade(db, "0025")
    message = str(refused.value)
    assert "Cannot downgrade below 0026" in message and "nothing was changed" in message
    for table, column in COLUMNS[:-1]:
        assert f"{table}.{column}: '{LONG}'" in message
    assert f"reservations.source_flavor_id: '{gone}'" in message
    # Nothing changed: the revision, the widths and every row stay.
    assert await current_revision(db) == head_revision()
    assert set((await _widths(db)).values()) == {255}
    named = await _named(db, LONG)
    assert named == {**dict.fromkeys(named, 1), "reservations": 0}
    # Once those rows are gone, the same downgrade goes through.
    await _drop(db, LONG, "long")
    try:
        await _downgrade(db, "0025")
        assert await current_revision(db) == "0025"
        assert set((await _widths(db)).values()) == {64}
    finally:
        await upgrade(db)
