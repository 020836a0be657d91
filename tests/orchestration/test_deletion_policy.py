"""deletion_policy: Retain keeps a server (stack delete, removal by an update, a change
back to Delete honoured), Snapshot and Retain on stack machinery are refused at validation
with nothing written, and the policy can come from a parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.service import StackService
from canopy.store.models import Stack
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, delete_stack, hot, live_servers, resources, server, settle


def _with_policy(policy: Any, **more: Any) -> dict[str, Any]:
    return hot({"kept": {**server(), "deletion_policy": policy}, "gone": server(), **more})


async def _update(p: Plane, sid: str, template: dict[str, Any]) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        stack = await svc.find(s, p.ctx.project_id, sid, lock=True)
        await svc.update(s, p.ctx, stack, {"template": template}, patch=False)


async def _live_ids(p: Plane) -> set[str]:
    return {s.id for s in await live_servers(p)}


async def test_a_retained_server_outlives_the_stack_and_the_other_goes(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "keep", _with_policy("Retain"))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        kept, gone = rows["kept"].server_id, rows["gone"].server_id
        assert kept and gone and await _live_ids(p) == {kept, gone}

        await delete_stack(p, sid)
        end = await settle(p, sid)
        assert (end.action, end.status) == ("DELETE", "COMPLETE"), end.status_reason
        for _ in range(10):
            await p.step()
        [left] = await live_servers(p)
        assert (left.id, left.status) == (kept, "ACTIVE")
        assert await resources(p, sid) == {}
    finally:
        await p.close()


async def test_an_update_that_removes_a_retained_server_keeps_it(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "keep", _with_policy("Retain"))
        await settle(p, sid)
        rows = await resources(p, sid)
        kept, gone = rows["kept"].server_id, rows["gone"].server_id
        await _update(p, sid, hot({"other": {"type": "OS::Heat::None"}}))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        for _ in range(10):
            await p.step()
        assert kept in await _live_ids(p)
        assert gone not in await _live_ids(p)
        assert set(await resources(p, sid)) == {"other"}
    finally:
        await p.close()


async def test_the_policy_follows_the_template_of_the_last_update(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = _with_policy({"get_param": "policy"})
        t["heat_template_version"] = "2016-10-14"
        t["parameters"] = {"policy": {"type": "string", "default": "Retain"}}
        sid = await create(p, "keep", t)
        await settle(p, sid)
        kept = (await resources(p, sid))["kept"].server_id
        # The same resources, now with Delete: nothing is replaced, the policy changes.
        await _update(p, sid, {**t, "parameters": {"policy": {"type": "string",
                                                              "default": "Delete"}}})  # fmt: skip
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert (await resources(p, sid))["kept"].server_id == kept
        await delete_stack(p, sid)
        await settle(p, sid)
        for _ in range(10):
            await p.step()
        assert await _live_ids(p) == set()
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            {**server(), "deletion_policy": "Snapshot"},
            'resources.r.deletion_policy: "Snapshot" deletion policy not supported',
        ),
        (
            {"type": "OS::Heat::ResourceGroup", "deletion_policy": "Retain",
             "properties": {"count": 1, "resource_def": server()}},
            "resources.r.deletion_policy: Retain is not supported for OS::Heat::ResourceGroup",
        ),
        (
            {"type": "OS::Heat::WaitConditionHandle", "deletion_policy": "Retain"},
            "resources.r.deletion_policy: Retain is not supported for "
            "OS::Heat::WaitConditionHandle",
        ),
    ],
)  # fmt: skip
async def test_policies_canopy_cannot_honour_are_refused_with_nothing_written(
    db_url: str, tmp_path: Path, resource: dict[str, Any], message: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        with pytest.raises(InvalidRequest) as e:
            await create(p, "refused", hot({"r": resource}))
        assert message in str(e.value)
        async with p.db.read() as s:
            assert (await s.execute(select(func.count()).select_from(Stack))).scalar_one() == 0
        assert await live_servers(p) == []
    finally:
        await p.close()


async def test_retain_on_a_row_only_type_is_accepted(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot({"v": {"type": "OS::Heat::Value", "deletion_policy": "Retain",
                       "properties": {"value": 1}}})  # fmt: skip
        sid = await create(p, "value", t)
        assert (await settle(p, sid)).status == "COMPLETE"
        await delete_stack(p, sid)
        end = await settle(p, sid)
        assert (end.action, end.status) == ("DELETE", "COMPLETE")
    finally:
        await p.close()
