"""Every row of every table, to show that a command changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, select

from canopy.store.db import Database
from canopy.store.name_trigrams import TRIGRAMS


async def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each table (as the database has them, alembic_version included) -> its sorted rows."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            meta = MetaData()
            await conn.run_sync(meta.reflect)
            out: dict[str, list[tuple[Any, ...]]] = {}
            for name, table in sorted(meta.tables.items()):
                if name == TRIGRAMS:
                    # SQLite's contentless index of names cannot be read whole; its shadow
                    # tables (`<name>_data` and the others) hold what it keeps, and are.
                    continue
                rows = (await conn.execute(select(table))).all()
                out[name] = sorted((tuple(r) for r in rows), key=repr)
            return out
    finally:
        await db.dispose()
