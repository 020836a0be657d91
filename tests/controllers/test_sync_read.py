"""A full sync compares in slices and reads in pages, handing the loop back in between."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from canopy.controllers import sync_read

from .harness import make_plane, statements

CLOUDS = """
[controllers]
sync_seconds = 5
full_sync_every = 1
sync_deep_every = 1  # every full pass compares every row (see test_sync_digest.py)

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 16
boot_seconds = 1
"""

N = 30


async def test_full_sync_in_slices_finds_exactly_what_changed(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_read, "SLICE", 7)
    monkeypatch.setattr(sync_read, "PAGE", 6)
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ids = await p.create_active(N, flavor="m1.tiny")
        gone = ids[3::7]  # spread over several slices and pages
        for sid in gone:
            server = await p.service.get(p.ctx, sid)
            assert server.remote_id is not None
            assert await p.sim("private").delete_out_of_band(server.remote_id)
        leak = await p.sim("private").create_out_of_band(
            str(uuid.uuid4()), "stray", installation=await p.rt.installation_id()
        )
        p.clock.advance(5.0)

        # The order in which the loop ran things: "t" a tick of another task, "r" a read.
        order: list[str] = []

        def read(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
            if sql.startswith("SELECT") and "FOR UPDATE" not in sql and "FROM servers" in sql:
                order.append("r")

        async def ticker() -> None:
            while True:
                await asyncio.sleep(0)
                order.append("t")

        t = asyncio.create_task(ticker())
        event.listen(p.db.engine.sync_engine, "before_cursor_execute", read)
        try:
            with statements(p.db) as seen:
                assert await p.worker.sync.sync_cloud("private")
        finally:
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", read)
            t.cancel()

        # What changed, and only that.
        for sid in ids:
            server = await p.service.get(p.ctx, sid)
            assert server.status == ("ERROR" if sid in gone else "ACTIVE"), sid
        remote = {r.remote_id for r in await p.sim("private").list()}
        assert leak.remote_id not in remote

        # Never all rows at once: each read of listed rows names at most a slice, each
        # read of the cloud's rows is a page.
        reads = [x for x in seen if x.startswith("SELECT") and "FROM servers" in x]
        light = [x for x in reads if "servers.id IN (" in x and "FOR UPDATE" not in x]
        assert light, reads
        for x in light:
            inside = re.search(r"servers\.id IN \(([^)]*)\)", x)
            assert inside is not None
            assert inside.group(1).count("?") + inside.group(1).count("$") <= 7, x
        pages = [x for x in reads if "ORDER BY servers.remote_id, servers.id" in x]
        assert len(pages) == N // 6 + 1  # every row of the cloud, a page at a time
        assert all("LIMIT" in x for x in pages)
        # The loop had its turn between slices and between pages: never two reads in a row.
        # (On PostgreSQL every statement waits for the server anyway; on SQLite, whose
        # statements run on the loop, only the explicit hand-over does it.)
        runs = "".join(order).strip("t")
        assert runs.count("r") >= len(light) + len(pages)
        assert "rr" not in runs, runs
    finally:
        await p.close()
