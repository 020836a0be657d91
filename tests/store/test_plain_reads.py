"""SQLite's plain reads (store/plain_reads.py): the engine's statements, run on the
driver, with the engine's bind processing and its errors."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import OperationalError

from canopy.store.db import Database
from canopy.store.models import Flavor, Server
from canopy.store.plain_reads import Unsupported

from .helpers import server_row


async def test_rows_are_the_drivers_and_binds_are_processed(seeded: Database) -> None:
    reads = seeded.plain_reads
    if reads is None:
        pytest.skip("plain reads are SQLite's")
    async with seeded.session() as s:
        names = sorted((await s.execute(select(Flavor.id))).scalars())
    q = select(Flavor.id).where(Flavor.id >= bindparam("q_low")).order_by(Flavor.id)
    with reads.transaction() as run:
        assert [r[0] for r in run(q, {"q_low": names[0]})] == names
        assert [r[0] for r in run(q, {"q_low": names[-1]})] == names[-1:]
    # A datetime is bound as the engine stores it (naive UTC text), not as str(): an
    # aware time in another zone, a microsecond either side of a stored updated_at.
    at = datetime(2026, 3, 1, 12, 0, 0, 500, tzinfo=UTC)
    async with seeded.session() as s:
        s.add(server_row(at, phase="steady"))
    plus5 = timezone(timedelta(hours=5))
    window = select(func.count()).select_from(Server).where(Server.updated_at < bindparam("t"))
    with reads.transaction() as run:
        assert run(window, {"t": (at - timedelta(microseconds=1)).astimezone(plus5)}) == [(0,)]
        assert run(window, {"t": (at + timedelta(microseconds=1)).astimezone(plus5)}) == [(1,)]
    # A statement's own fixed values (LIMIT's OFFSET 0) need no value from the caller.
    with reads.transaction() as run:
        assert len(run(select(Flavor.id).limit(bindparam("n")), {"n": 1})) == 1


async def test_lists_of_values_are_the_engines(seeded: Database) -> None:
    reads = seeded.plain_reads
    if reads is None:
        pytest.skip("plain reads are SQLite's")
    expanding = select(Flavor.id).where(Flavor.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(Unsupported), reads.transaction() as run:
        run(expanding, {"ids": ["1"]})
    # Afterwards the reader works again.
    with reads.transaction() as run:
        assert run(select(func.count()).select_from(Flavor), {})[0][0] > 0


async def test_errors_are_sqlalchemys(seeded: Database) -> None:
    reads = seeded.plain_reads
    if reads is None:
        pytest.skip("plain reads are SQLite's")
    with pytest.raises(OperationalError), reads.transaction() as run:
        run(text("SELECT * FROM no_such_table"), {})
    with reads.transaction() as run:  # and the next transaction is fine
        assert run(text("SELECT 1"), {}) == [(1,)]


async def test_writes_are_refused(seeded: Database) -> None:
    reads = seeded.plain_reads
    if reads is None:
        pytest.skip("plain reads are SQLite's")
    with pytest.raises(OperationalError), reads.transaction() as run:
        run(text("DELETE FROM flavors"), {})
    async with seeded.read() as s:
        assert (await s.execute(select(func.count()).select_from(Flavor))).scalar_one() > 0


async def test_a_file_that_cannot_be_opened_is_a_database_error(
    seeded: Database, tmp_path: Path
) -> None:
    """Not a bare sqlite3 error (a 500): SQLAlchemy's, which the API answers with 503."""
    reads = seeded.plain_reads
    if reads is None:
        pytest.skip("plain reads are SQLite's")
    reads.close()
    reads.path = str(tmp_path / "gone" / "canopy.db")
    with pytest.raises(OperationalError), reads.transaction() as run:
        run(text("SELECT 1"), {})


async def test_a_busy_file_is_left_to_the_engine_and_the_reader_recovers(seeded: Database) -> None:
    """SQLITE_BUSY on a plain read is `Unsupported` (the list route then takes the engine's
    path, which waits a busy file out), not an error; the reader works again once the lock
    is gone. The lock: another connection in exclusive locking mode with a write open,
    which no other connection can read past in WAL mode."""
    reads = seeded.plain_reads
    if reads is None:
        pytest.skip("plain reads are SQLite's")
    path = seeded.url.split("///", 1)[1]
    q = select(Flavor.id).order_by(Flavor.id)
    with reads.transaction() as run:
        before = run(q, {})
    # Exclusive locking needs every other connection to the file closed first.
    reads.close()
    await seeded.engine.dispose()
    holder = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE flavors SET name = name")
        with pytest.raises(Unsupported, match="busy"), reads.transaction() as run:
            run(q, {})
        holder.execute("COMMIT")
        holder.execute("PRAGMA locking_mode = NORMAL")
        holder.execute("SELECT 1").fetchall()  # the exclusive lock goes at the next access
    finally:
        holder.close()
    with reads.transaction() as run:
        assert run(q, {}) == before
