"""A user's change to a server (rename, metadata, tags) is announced as Nova's
`compute.instance.update`, in the change's transaction; a refused change sends nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.domain.errors import CanopyError, Conflict, InvalidRequest, NotFound
from canopy.store.models import OutboxEvent
from tests.controllers.harness import Plane

from .helpers import notify_plane

UPDATE = "compute.instance.update"


async def _updates(p: Plane) -> list[dict[str, Any]]:
    """The payloads of the update events, in order."""
    async with p.db.read() as s:
        rows = await s.execute(
            select(OutboxEvent.payload)
            .where(OutboxEvent.event_type == UPDATE)
            .order_by(OutboxEvent.id)
        )
        return [dict(payload) for (payload,) in rows]


async def _active(p: Plane) -> str:
    [sid] = await p.create(1, metadata={"role": "web"})

    async def up() -> bool:
        return [x.status for x in await p.servers() if x.id == sid] == ["ACTIVE"]

    await p.run_until(up)
    assert await _updates(p) == []  # the create announces itself as create.end only
    return sid


async def test_a_metadata_change_sends_an_update_with_the_new_metadata(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path)
    try:
        sid = await _active(p)
        await p.service.set_metadata(p.ctx, sid, {"env": "prod"}, replace=False)
        await p.service.set_metadata(p.ctx, sid, {"only": "this"}, replace=True)
        await p.service.delete_metadata_item(p.ctx, sid, "only")
        got = await _updates(p)
        assert [e["metadata"] for e in got] == [
            {"role": "web", "env": "prod"},
            {"only": "this"},
            {},
        ]
        assert {e["instance_id"] for e in got} == {sid}
        assert {e["state"] for e in got} == {"active"}
    finally:
        await p.close()


async def test_a_tags_change_sends_an_update_with_the_new_tags(db_url: str, tmp_path: Path) -> None:
    p = await notify_plane(db_url, tmp_path)
    try:
        sid = await _active(p)
        await p.service.set_tags(p.ctx, sid, ["b", "a"])
        await p.service.set_tags(p.ctx, sid, [])
        got = await _updates(p)
        assert [e["tags"] for e in got] == [["a", "b"], []]
        assert {e["instance_id"] for e in got} == {sid}
        # A metadata change carries the tags as they are (read in its transaction).
        await p.service.set_tags(p.ctx, sid, ["kept"])
        await p.service.set_metadata(p.ctx, sid, {"x": "1"}, replace=False)
        assert (await _updates(p))[-1]["tags"] == ["kept"]
    finally:
        await p.close()


async def test_a_rename_sends_an_update_with_the_old_and_new_names(
    db_url: str, tmp_path: Path
) -> None:
    p = await notify_plane(db_url, tmp_path)
    try:
        sid = await _active(p)
        [before] = [x.name for x in await p.servers() if x.id == sid]
        await p.service.update(p.ctx, sid, name="renamed")
        [got] = await _updates(p)
        assert (got["display_name"], got["old_display_name"]) == ("renamed", before)
        # A description alone is an update too, with no old name to give.
        await p.service.update(p.ctx, sid, description="d", set_description=True)
        last = (await _updates(p))[-1]
        assert last["display_name"] == "renamed" and "old_display_name" not in last
    finally:
        await p.close()


async def test_a_refused_change_sends_nothing(db_url: str, tmp_path: Path) -> None:
    p = await notify_plane(db_url, tmp_path)
    try:
        # Building: Nova's state check refuses metadata (409) before anything is written.
        [building] = await p.create(1)
        with pytest.raises(Conflict):
            await p.service.set_metadata(p.ctx, building, {"a": "1"}, replace=False)
        sid = await _active(p)
        refused: list[tuple[type[CanopyError], Any]] = [
            (InvalidRequest, p.service.set_metadata(p.ctx, sid, {"canopy:x": "1"}, replace=True)),
            (InvalidRequest, p.service.set_metadata(p.ctx, sid, {"a": 1}, replace=False)),
            (NotFound, p.service.delete_metadata_item(p.ctx, sid, "missing")),
            (InvalidRequest, p.service.set_tags(p.ctx, sid, ["a/b"])),
            (InvalidRequest, p.service.update(p.ctx, sid, name="x" * 300)),
            (NotFound, p.service.set_tags(p.ctx, "no-such-server", ["a"])),
        ]
        for error, call in refused:
            with pytest.raises(error):
                await call
        assert await _updates(p) == []
        [vm] = [x for x in await p.servers() if x.id == sid]
        assert vm.metadata_ == {"role": "web"}  # nothing changed either
    finally:
        await p.close()
