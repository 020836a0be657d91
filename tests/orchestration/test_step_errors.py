"""A type's step that writes and then raises a data error leaves nothing it wrote: the step
runs in a savepoint (step_errors.py), and only the resource's failure is committed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.orchestration.resources.group import ResourceGroup
from canopy.orchestration.resources.server_common import ServerBase
from canopy.store.models import Server, StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, events, hot, live_servers, server, settle


async def _rows(p: Plane, stack_id: str) -> list[StackResource]:
    async with p.db.read() as s:
        q = select(StackResource).where(StackResource.stack_id == stack_id)
        return list((await s.execute(q)).scalars())


async def _servers(s: AsyncSession) -> int:
    return int(await s.scalar(select(func.count()).select_from(Server)) or 0)


async def _events(p: Plane, stack_id: str) -> list[tuple[str, str, str, str]]:
    """(resource, action, status, reason) of the stack's resource events, in order."""
    return [
        (e.resource_name, e.action, e.status, e.status_reason)
        for e in await events(p, stack_id)
        if e.resource_type != "OS::Heat::Stack"
    ]


async def test_a_step_that_made_servers_and_then_raises_leaves_none_of_them(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ResourceGroup's create writes its member rows, their servers and their events,
    then meets a bug: none of them is left, only the group's failure and its events."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        real = ResourceGroup.create
        made: list[int] = []

        async def create_then_fail(self: ResourceGroup, step: Any, res: Any) -> Any:
            await real(self, step, res)
            made.append(await _servers(step.session))  # the members' servers are written
            return {}["missing"]  # a bug after the writes: KeyError

        monkeypatch.setattr(ResourceGroup, "create", create_then_fail)
        group = {
            "type": "OS::Heat::ResourceGroup",
            "properties": {"count": 2, "resource_def": server()},
        }
        sid = await create(p, "partial", hot({"g": group}), disable_rollback=True)
        done = await settle(p, sid, steps=20)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason == "Resource CREATE failed: resources.g: KeyError: 'missing'"
        assert made == [2]
        [row] = await _rows(p, sid)  # no member row
        assert (row.name, row.action, row.status) == ("g", "CREATE", "FAILED")
        assert row.status_reason == "KeyError: 'missing'"
        assert row.physical_resource_id == ""  # the step's own change of the row is undone
        assert await live_servers(p) == []
        assert await _events(p, sid) == [
            ("g", "CREATE", "IN_PROGRESS", "state changed"),
            ("g", "CREATE", "FAILED", "KeyError: 'missing'"),
        ]
    finally:
        await p.close()


async def test_a_bulk_create_that_raises_after_its_servers_leaves_none_of_them(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The servers' create of a round writes its rows first (`before`), then its servers:
    a data error after that keeps the rows (FAILED, no server) and no server."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        real = ServerBase.create_many
        made: list[int] = []

        async def create_then_fail(self: Any, step: Any, rows: Any, before: Any) -> Any:
            await real(self, step, rows, before)
            made.append(await _servers(step.session))
            raise TypeError("unhashable type: 'list'")

        monkeypatch.setattr(ServerBase, "create_many", create_then_fail)
        sid = await create(p, "vms", hot({"v1": server(), "v2": server()}), disable_rollback=True)
        done = await settle(p, sid, steps=20)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert "TypeError: unhashable type: 'list'" in done.status_reason
        assert made == [2]
        rows = {r.name: r for r in await _rows(p, sid)}
        assert {(r.name, r.status) for r in rows.values()} == {("v1", "FAILED"), ("v2", "FAILED")}
        assert await live_servers(p) == []
        assert {(r.server_id, r.physical_resource_id) for r in rows.values()} == {(None, "")}
        assert sorted(await _events(p, sid)) == [
            ("v1", "CREATE", "FAILED", "TypeError: unhashable type: 'list'"),
            ("v1", "CREATE", "IN_PROGRESS", "state changed"),
            ("v2", "CREATE", "FAILED", "TypeError: unhashable type: 'list'"),
            ("v2", "CREATE", "IN_PROGRESS", "state changed"),
        ]
    finally:
        await p.close()


async def test_a_servers_check_runs_without_a_savepoint_and_a_data_error_still_fails_it(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's completion check writes only its own row, after its reads: it runs with
    no savepoint (a flush per row would cost more than the check), and a data error in it
    still fails that resource alone, with the root cause."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    savepoints: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SAVEPOINT"):
            savepoints.append(statement)

    engine = p.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        sid = await create(p, "ok", hot({f"v{i}": server() for i in range(3)}))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE")
        assert len(savepoints) == 1, savepoints  # the round's bulk create; no check's
        real = ServerBase.shown

        def shown(self: ServerBase, attrs: Any) -> Any:
            raise KeyError("addresses")

        monkeypatch.setattr(ServerBase, "shown", shown)
        sid = await create(p, "bad", hot({"w": server()}), disable_rollback=True)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert "KeyError: 'addresses'" in done.status_reason
        rows = {r.name: r for r in await _rows(p, sid)}
        assert (rows["w"].status, rows["w"].attributes) == ("FAILED", {})
        monkeypatch.setattr(ServerBase, "shown", real)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
        await p.close()
