"""The environment's resource_registry as Heat resolves it: a type name maps to a template
of `files` or to another type, through chains of aliases, for the template's resources and
for the members of groups (ResourceGroup's resource_def, AutoScalingGroup's resource)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.outputs import bound_of, outputs
from canopy.orchestration.service import StackService
from canopy.store.models import Stack, StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, settle
from .test_nested import SERVER_YAML

URL = "file:///home/me/templates/server.yaml"
ENV = {"resource_registry": {"My::Server": URL}}


async def _delete(p: Plane, sid: str) -> Stack:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        await svc.delete(s, await svc.find(s, p.ctx.project_id, sid, lock=True))
    return await settle(p, sid)


async def _update(p: Plane, sid: str, body: dict[str, Any]) -> Stack:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        found = await svc.find(s, p.ctx.project_id, sid, lock=True)
        await svc.update(s, p.ctx, found, body, patch=True)
    return await settle(p, sid)


async def _members(p: Plane, sid: str, group: str) -> list[StackResource]:
    rows = await resources(p, sid)
    return sorted((r for r in rows.values() if r.group_id == rows[group].id), key=lambda r: r.name)


async def _live_stacks(p: Plane) -> list[str]:
    async with p.db.read() as s:
        return list(await s.scalars(select(Stack.name).where(Stack.deleted.is_(False))))


async def test_a_resource_group_of_an_alias_makes_members_from_its_template(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "group": {
                    "type": "OS::Heat::ResourceGroup",
                    "properties": {
                        "count": 2,
                        "resource_def": {
                            "type": "My::Server",
                            "properties": {"label": "node-%index%"},
                        },
                    },
                }
            },
            outputs={"labels": {"value": {"get_attr": ["group", "label"]}}},
        )
        sid = await create(p, "aliased", t, files={URL: SERVER_YAML}, environment=ENV)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        members = await _members(p, sid, "group")
        assert [m.type for m in members] == [URL, URL]  # template resources: child stacks
        labels = sorted(v.metadata_["label"] for v in await live_servers(p))
        assert labels == ["node-0", "node-1"]
        rows = await resources(p, sid)
        shown = outputs(bound_of(done, "RegionOne"), list(rows.values()))
        assert [o["output_value"] for o in shown] == [["node-0", "node-1"]]

        grown = await _update(p, sid, {"template": {**t, "resources": {"group": {
            **t["resources"]["group"],
            "properties": {**t["resources"]["group"]["properties"], "count": 3}}}}})  # fmt: skip
        assert (grown.action, grown.status) == ("UPDATE", "COMPLETE"), grown.status_reason
        assert len(await live_servers(p)) == 3

        gone = await _delete(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
        assert await live_servers(p) == [] and await _live_stacks(p) == []
    finally:
        await p.close()


async def test_an_autoscaling_group_of_an_alias_to_a_builtin_type(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "asg": {
                    "type": "OS::Heat::AutoScalingGroup",
                    "properties": {
                        "min_size": 1,
                        "max_size": 3,
                        "desired_capacity": 2,
                        "resource": {
                            "type": "My::Box",
                            "properties": {"flavor": "m1.small", "image": "cirros"},
                        },
                    },
                }
            }
        )
        # An alias of an alias: My::Box -> My::Vm -> OS::Nova::Server.
        env = {"resource_registry": {"My::Box": "My::Vm", "My::Vm": "OS::Nova::Server"}}
        sid = await create(p, "asg", t, environment=env)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        members = await _members(p, sid, "asg")
        assert [m.type for m in members] == ["OS::Nova::Server"] * 2
        assert len(await live_servers(p)) == 2
        gone = await _delete(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
        assert await live_servers(p) == []
    finally:
        await p.close()


async def test_a_plain_resource_aliased_to_builtin_types(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "nothing": {"type": "My::Thing", "properties": {"anything": [1, 2]}},
                "value": {"type": "My::Value", "properties": {"value": "v"}},
                "vm": {"type": "My::Server", "properties": {"label": "plain"}},
            },
            outputs={"v": {"value": {"get_attr": ["value", "value"]}}},
        )
        env = {
            "resource_registry": {
                "My::Thing": "OS::Heat::None",
                "My::Value": "My::Other",
                "My::Other": "OS::Heat::Value",
                "My::Server": URL,
            }
        }
        sid = await create(p, "plain", t, files={URL: SERVER_YAML}, environment=env)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert (rows["nothing"].type, rows["value"].type, rows["vm"].type) == (
            "OS::Heat::None",
            "OS::Heat::Value",
            URL,
        )
        assert rows["value"].attributes["value"] == "v"
        assert [v.metadata_["label"] for v in await live_servers(p)] == ["plain"]
        gone = await _delete(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("registry", "member", "message"),
    [
        (
            {"My::A": "My::B", "My::B": "My::A"},
            "My::A",
            "environment.resource_registry: the types map to each other in a loop: "
            "My::A -> My::B -> My::A.",
        ),
        (
            {"My::A": "My::Nowhere"},
            "My::A",
            "The Resource Type (My::Nowhere) could not be found.",
        ),
        (
            {"My::A": "file:///missing.yaml"},
            "My::A",
            "The template file:///missing.yaml is not in the stack's files",
        ),
        ({}, "My::Unmapped", "The Resource Type (My::Unmapped) could not be found."),
    ],
)
async def test_a_member_alias_that_leads_nowhere_is_refused_before_anything_exists(
    db_url: str, tmp_path: Path, registry: dict[str, str], member: str, message: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "group": {
                    "type": "OS::Heat::ResourceGroup",
                    "properties": {"count": 1, "resource_def": {"type": member}},
                }
            }
        )
        with pytest.raises(InvalidRequest) as e:
            await create(p, "bad", t, environment={"resource_registry": registry})
        assert message in str(e.value)
        # The same alias on a resource of the template is refused the same way.
        plain = hot({"r": {"type": member}})
        with pytest.raises(InvalidRequest) as e2:
            await create(p, "bad", plain, environment={"resource_registry": registry})
        assert message in str(e2.value)
        assert await _live_stacks(p) == []
    finally:
        await p.close()
