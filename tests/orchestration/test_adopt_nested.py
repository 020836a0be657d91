"""Abandon then adopt of a stack with a ResourceGroup of servers, an OS::Heat::Stack and a
template resource (abandoning.py, resources/adopt_tree.py): the data nests members and
child stacks as Heat's does, and the adopt takes the same servers, making and deleting
none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from canopy.orchestration.stack_actions import abandon
from canopy.store.models import Stack, StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, delete_stack, hot, live_servers, resources, server, settle
from .helpers import stack as stack_of

INNER = hot({"inner": server()}, outputs={"vm": {"value": {"get_resource": "inner"}}})
BOX = hot({"vm": server()})
TEMPLATE = hot(
    {
        "group": {
            "type": "OS::Heat::ResourceGroup",
            "properties": {"count": 2, "resource_def": server(name="m%index%")},
        },
        "nested": {"type": "OS::Heat::Stack", "properties": {"template": yaml.safe_dump(INNER)}},
        "box": {"type": "box.yaml"},
        "word": {"type": "OS::Heat::Value", "properties": {"value": "w"}},
    },
    outputs={"inner": {"value": {"get_attr": ["nested", "vm"]}}},
)


async def _abandoned(p: Plane) -> tuple[dict[str, Any], set[str]]:
    """A stack created, then abandoned: its data, and its (kept) servers."""
    sid = await create(p, "orig", TEMPLATE, files={"box.yaml": json.dumps(BOX)})
    done = await settle(p, sid)
    assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
    servers = {s.id for s in await live_servers(p)}
    assert len(servers) == 4
    async with p.db.session() as s:
        found = await s.get(Stack, sid)
        assert found is not None
        data = await abandon(s, found, p.clock)
    return data, servers


async def _holders(p: Plane, servers: set[str]) -> list[str]:
    """The stacks whose rows hold any of `servers`."""
    async with p.db.read() as s:
        q = select(StackResource.stack_id).where(StackResource.server_id.in_(servers))
        return list((await s.execute(q)).scalars())


async def _children(p: Plane, parent: str) -> list[Stack]:
    async with p.db.read() as s:
        q = select(Stack).where(Stack.owner_id == parent)
        return list((await s.execute(q)).scalars())


async def test_abandon_nests_members_and_child_stacks_and_forgets_the_children(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        data, servers = await _abandoned(p)
        found = data["resources"]
        assert set(found) == {"group", "nested", "box", "word"}  # members are not flat
        members = found["group"]["resources"]
        assert set(members) == {"0", "1"}
        assert {m["type"] for m in members.values()} == {"OS::Nova::Server"}
        # A nested resource's entry is its child stack's data, as in Heat.
        assert set(found["nested"]["resources"]) == {"inner"}
        assert found["nested"]["template"] == INNER
        picked = {
            *(m["resource_id"] for m in members.values()),
            found["nested"]["resources"]["inner"]["resource_id"],
            found["box"]["resources"]["vm"]["resource_id"],
        }
        assert picked == servers
        assert await _holders(p, servers) == []  # the children were forgotten too
        assert {s.id for s in await live_servers(p)} == servers
        assert all(c.deleted for c in await _children(p, data["id"]))
    finally:
        await p.close()


async def test_adopt_of_the_abandoned_data_takes_the_same_servers_and_makes_none(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        data, servers = await _abandoned(p)
        sid = await create(p, "copy", None, adopt_stack_data=json.dumps(data))  # type: ignore[arg-type]
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ADOPT", "COMPLETE"), done.status_reason
        assert {s.id for s in await live_servers(p)} == servers  # none made, none deleted
        rows = await resources(p, sid)
        held = {r.server_id for r in rows.values() if r.server_id is not None}
        assert {"group.0", "group.1"} <= set(rows)
        assert {rows["group.0"].action, rows["group.1"].action} == {"ADOPT"}
        children = await _children(p, sid)
        assert {c.action for c in children} == {"ADOPT"} and len(children) == 2
        for child in children:
            held |= {r.server_id for r in (await resources(p, child.id)).values()}
        assert held == servers
        assert set(rows["group"].attributes["refs"]) == {
            rows["group.0"].server_id,
            rows["group.1"].server_id,
        }
        # The adopted stack owns them now: deleting it deletes all four.
        await delete_stack(p, sid)
        assert (await settle(p, sid)).status == "COMPLETE"

        async def gone() -> bool:
            return not (servers & {s.id for s in await live_servers(p)})

        await p.run_until(gone)
    finally:
        await p.close()


async def test_a_failed_nested_adopt_rolls_back_letting_go_of_members_and_children(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        data, servers = await _abandoned(p)
        del data["resources"]["group"]["resources"]["1"]  # a member with no entry
        sid = await create(
            p,
            "copy",
            None,  # type: ignore[arg-type]
            adopt_stack_data=data,
            disable_rollback=False,
        )
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
        assert await resources(p, sid) == {}
        assert await _holders(p, servers) == []  # members and child stacks let go of
        assert all(c.deleted for c in await _children(p, sid))
        assert {s.id for s in await live_servers(p)} == servers  # nothing deleted
    finally:
        await p.close()


async def test_a_failed_member_adopt_without_rollback_names_the_member(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        data, servers = await _abandoned(p)
        data["resources"]["group"]["resources"]["1"]["resource_id"] = "nobody"
        data["resources"]["nested"]["resources"] = {}
        sid = await create(p, "copy", None, adopt_stack_data=data)  # type: ignore[arg-type]
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ADOPT", "FAILED")
        rows = await resources(p, sid)
        assert rows["group.1"].status_reason == "Server nobody could not be found."
        assert rows["group"].status == "FAILED"
        assert "resources.group.1: Server nobody could not be found." in (
            rows["group"].status_reason
        )
        assert rows["nested"].status == "FAILED"  # stopped when the group failed
        [child] = [
            c for c in await _children(p, sid) if c.id == rows["nested"].physical_resource_id
        ]
        child = await settle(p, child.id)
        assert (child.action, child.status) == ("ADOPT", "FAILED")
        assert child.status_reason == (
            "Resource ADOPT failed: resources.inner: Resource ID was not provided."
        )
        assert {s.id for s in await live_servers(p)} == servers
    finally:
        await p.close()


async def test_a_member_still_adopting_when_the_adopt_fails_lets_go_of_its_server(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [ready] = await p.create(name="ready")

        async def active() -> bool:
            return [s.status for s in await live_servers(p)] == ["ACTIVE"]

        await p.run_until(active)
        [building] = await p.create(name="building")  # not placed yet: still building
        t = hot(
            {
                "group": {
                    "type": "OS::Heat::ResourceGroup",
                    "properties": {"count": 2, "resource_def": server()},
                },
                "missing": {"type": "OS::Heat::None"},  # no entry: fails the adopt
            }
        )
        entries = {"0": {"resource_id": ready}, "1": {"resource_id": building}}
        data = {"template": t, "resources": {"group": {"resources": entries}}}
        sid = await create(p, "copy", None, adopt_stack_data=data)  # type: ignore[arg-type]
        assert await p.worker.orchestration.run_once() == 1
        done = await stack_of(p, sid)
        assert (done.action, done.status) == ("ADOPT", "FAILED")
        rows = await resources(p, sid)
        assert (rows["group.0"].status, rows["group.0"].server_id) == ("COMPLETE", ready)
        assert rows["group.1"].status == "FAILED"  # stopped while its server was building
        assert rows["group.1"].server_id is None
        await delete_stack(p, sid)
        assert (await settle(p, sid)).status == "COMPLETE"

        async def deleted() -> bool:
            return ready not in {s.id for s in await live_servers(p)}

        await p.run_until(deleted)  # the member the adopt took goes with the stack
        assert {s.id for s in await live_servers(p)} == {building}  # the other stays
    finally:
        await p.close()
