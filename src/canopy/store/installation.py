"""This installation's id: made once, kept in the database, read by every worker.

Migration 0012 makes it; a database emptied by hand (or by a test) gets a new one on
first use. The row's key is fixed (`singleton` = 1), so processes starting together agree
on one id: the second insert fails and re-reads the first's.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from canopy.domain.clock import Clock
from canopy.store.db import Database
from canopy.store.models import Installation


async def installation_id(db: Database, clock: Clock) -> str:
    """The installation's id, made now if the database has none."""
    for _ in range(3):
        async with db.read() as s:
            found = (await s.execute(select(Installation.id))).scalars().first()
        if found is not None:
            return found
        try:
            async with db.session() as s:
                s.add(Installation(singleton=1, id=uuid.uuid4().hex, created_at=clock.now()))
        except IntegrityError:
            continue  # another process made it first: read theirs
    raise RuntimeError("could not read or make the installation id")
