"""Adopting resources into a stack (resources/adopt.py, adopting.py): what each type takes
from its entry in the adopt data, and what fails the adopt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.adopting import read_adopt_data
from canopy.orchestration.controller import step_stack
from canopy.store.models import Stack, StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle, stack


def _data(template: dict[str, Any], **entries: Any) -> dict[str, Any]:
    return {"template": template, "resources": entries}


async def _adopt(p: Plane, name: str, data: Any) -> str:
    return await create(p, name, None, adopt_stack_data=data)  # type: ignore[arg-type]


async def test_a_server_still_building_is_waited_for_then_adopted(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [vm] = await p.create()
        t = hot(
            {
                "vm": server(),
                "name": {
                    "type": "OS::Heat::Value",
                    "properties": {"value": {"get_attr": ["vm", "name"]}},
                },
            }
        )
        sid = await _adopt(
            p, "building", _data(t, vm={"resource_id": vm}, name={"resource_id": "n"})
        )
        assert await p.worker.orchestration.run_once() == 1
        shown = await stack(p, sid)
        assert (shown.action, shown.status) == ("ADOPT", "IN_PROGRESS")
        rows = await resources(p, sid)
        assert (rows["vm"].action, rows["vm"].status) == ("ADOPT", "IN_PROGRESS")
        assert "name" not in rows  # waits for the server it refers to
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ADOPT", "COMPLETE"), done.status_reason
        assert done.adopt_data is None  # read only while the adopt goes
        rows = await resources(p, sid)
        assert rows["vm"].server_id == vm and rows["vm"].physical_resource_id == vm
        assert rows["vm"].attributes["canopy"]["cloud"] in ("private", "public")
        assert rows["name"].attributes["value"] == rows["vm"].attributes["name"] == "vm"
        assert [s.id for s in await live_servers(p)] == [vm]
    finally:
        await p.close()


async def test_each_bad_entry_fails_its_resource_with_why_and_dependents_wait(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [gone] = await p.create()
        await p.service.delete(p.ctx, gone)
        t = hot(
            {
                "dying": server(),
                "wrong": {"type": "OS::Heat::Value", "properties": {"value": 1}},
                "number": {"type": "OS::Heat::None"},
                "password": {"type": "OS::Heat::RandomString"},
                "missing": {"type": "OS::Heat::None"},
                "after": {
                    "type": "OS::Heat::Value",
                    "properties": {"value": {"get_resource": "missing"}},
                },
                "fine": {"type": "OS::Heat::TestResource", "properties": {"value": "v"}},
            }
        )
        data = _data(
            t,
            dying={"resource_id": gone},
            wrong={"resource_id": "x", "type": "OS::Nova::Server"},
            number={"resource_id": 7},
            password={"resource_id": "pw", "resource_data": {}},
            fine={"resource_id": "kept-id"},
        )
        sid = await _adopt(p, "bad", data)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ADOPT", "FAILED")
        assert done.status_reason.startswith("Resource ADOPT failed: resources.")
        rows = await resources(p, sid)
        why = {n: r.status_reason for n, r in rows.items() if r.status == "FAILED"}
        assert why == {
            "dying": f"Server {gone} is being deleted.",
            "wrong": "The adopt data's resource is a OS::Nova::Server, not a OS::Heat::Value.",
            "number": "resource_id must be a string of at most 255 characters.",
            "password": "The adopt data has no value for this RandomString (resource_data.value).",
            "missing": "Resource ID was not provided.",
        }
        assert "after" not in rows  # its dependency failed: never started
        assert (rows["fine"].status, rows["fine"].physical_resource_id) == ("COMPLETE", "kept-id")
        assert rows["fine"].attributes == {"output": "v"}
        assert rows["dying"].server_id is None  # not taken
    finally:
        await p.close()


def test_adopt_data_is_read_from_json_or_yaml_text_or_a_map() -> None:
    data = {
        "template": hot({"v": {"type": "OS::Heat::None"}}),
        "environment": {"parameters": {"a": "1"}},
        "files": {"f.yaml": "x"},
        "resources": {"v": {"resource_id": "id"}},
    }
    for raw in (data, yaml.safe_dump(data)):
        found = read_adopt_data(raw)
        assert found.template == data["template"]
        assert (found.parameters, found.files) == ({"a": "1"}, {"f.yaml": "x"})
        assert found.resources == {"v": {"resource_id": "id"}}
    for raw, why in (
        ("a: [", "not valid YAML"),
        ("just text", "it must be a map"),
        ({"template": {}, "environment": {"parameters": []}}, "parameters must be a map"),
        ("x: &a [1]\ny: *a", "YAML aliases are not allowed"),
    ):
        try:
            read_adopt_data(raw)
        except InvalidRequest as e:
            assert str(e).startswith("Invalid adopt data: ") and why in str(e), e
        else:
            raise AssertionError(f"{raw!r} was read")


async def test_two_stacks_adopting_one_server_at_once_get_it_once(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        [vm] = await p.create()

        async def active() -> bool:
            return [s.status for s in await live_servers(p)] == ["ACTIVE"]

        await p.run_until(active)
        data = _data(hot({"vm": server()}), vm={"resource_id": vm})
        ids = [await _adopt(p, name, data) for name in ("one", "two")]
        ctl = p.worker.orchestration

        async def step(sid: str) -> None:
            async with p.db.session() as s:
                q = select(Stack).where(Stack.id == sid).with_for_update()
                found = (await s.execute(q)).scalar_one()
                await step_stack(s, found, p.clock.now(), ctl._bind, ctl.servers, p.rt)

        # Both steps at once (on PostgreSQL two transactions interleave; the server row's
        # lock makes the second wait for the first and then see its resource).
        await asyncio.gather(*(step(sid) for sid in ids))
        states = sorted([(await stack(p, sid)).status for sid in ids])
        assert states == ["COMPLETE", "FAILED"]
        async with p.db.read() as s:
            q = select(StackResource.stack_id).where(StackResource.server_id == vm)
            assert len(list((await s.execute(q)).scalars())) == 1
    finally:
        await p.close()
