"""Sync's passes take a database slot and a turn of the loop in one order.

Every cloud's pass starts at once; each holds a slot (controllers/runtime.py `db_slot`)
around its transactions and takes a turn (controllers/sync_turns.py) inside it. A pass
that took the turn first and then waited for a slot would wait forever on a pass that
holds the last slot and waits for the turn.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from canopy.controllers.fencing import LeaseLost
from canopy.controllers.sync import SyncController
from canopy.controllers.sync_turns import turn

from .harness import make_plane


class _OnePage:
    count = 1  # a listing of one page: `_all_gone` asks the cloud nothing


async def test_rows_gone_wait_for_a_slot_before_the_turn(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        p.rt._db_slots = asyncio.Semaphore(1)  # every slot taken but one (a pool of one)
        sync = SyncController(p.rt)
        inside = asyncio.Event()

        async def a_page_compared() -> str:
            # What `_reconcile` does for a page: the slot, then a turn for each slice.
            async with p.rt.db_slot:
                inside.set()
                await asyncio.sleep(0.01)  # the other pass reaches `_all_gone` meanwhile
                async with turn():
                    return "compared"

        async def rows_gone() -> str:
            await inside.wait()
            try:
                now = p.clock.now()
                await sync._all_gone("sync:x", "private", ["gone"], set(), now, _OnePage())  # type: ignore[arg-type]
            except LeaseLost:
                return "checked"  # no job is held here: it got as far as the lock
            return "checked"

        done = await asyncio.wait_for(asyncio.gather(a_page_compared(), rows_gone()), 10)
        assert done == ["compared", "checked"]
    finally:
        await p.close()
