"""Nested stacks: OS::Heat::Stack and template resources are child stack rows walked by
the same engine; outputs come back as attributes; delete deletes the children; nesting is
bounded and bad nested templates are refused before anything exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.outputs import bound_of, outputs
from canopy.orchestration.service import StackService
from canopy.store.models import Stack
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle, stack

SERVER_YAML = """\
heat_template_version: 2018-08-31
parameters:
  flavor:
    type: string
    default: m1.small
  label:
    type: string
resources:
  vm:
    type: OS::Nova::Server
    properties:
      flavor: {get_param: flavor}
      image: cirros
      metadata: {label: {get_param: label}}
outputs:
  cloud:
    value: {get_attr: [vm, canopy, cloud]}
  label:
    value: {get_param: label}
"""
URL = "file:///home/me/templates/server.yaml"


async def _children(p: Plane, parent_id: str) -> list[Stack]:
    async with p.db.read() as s:
        q = select(Stack).where(Stack.owner_id == parent_id).order_by(Stack.owner_resource)
        return list((await s.execute(q)).scalars())


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


def _outputs(done: Stack, rows: dict[str, Any]) -> dict[str, Any]:
    found = outputs(bound_of(done, "RegionOne"), list(rows.values()))
    return {o["output_key"]: o["output_value"] for o in found}


async def test_a_template_resource_is_a_child_stack_with_its_outputs(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "one": {"type": URL, "properties": {"label": "first"}},
                "two": {"type": URL, "properties": {"label": {"get_attr": ["one", "label"]}}},
                "ref": {
                    "type": "OS::Heat::Value",
                    "properties": {"value": {"get_resource": "one"}},
                },
            },
            outputs={
                "where": {"value": {"get_attr": ["one", "cloud"]}},
                "all": {"value": {"get_attr": ["two", "outputs"]}},
            },
        )
        sid = await create(p, "parent", t, files={URL: SERVER_YAML})
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        kids = await _children(p, sid)
        assert [(k.owner_resource, k.nested_depth, k.status) for k in kids] == [
            ("one", 1, "COMPLETE"),
            ("two", 1, "COMPLETE"),
        ]
        assert all(k.name.startswith("parent-") for k in kids)
        rows = await resources(p, sid)
        assert rows["one"].physical_resource_id == kids[0].id
        assert rows["ref"].attributes["value"] == kids[0].id  # get_resource: the child's id
        # "two" waited for "one" (it reads one's output).
        assert rows["two"].created_at >= rows["one"].updated_at
        outs = _outputs(done, rows)
        assert outs["where"] == "private"
        assert outs["all"] == {"cloud": "private", "label": "first"}
        labels = sorted(v.metadata_["label"] for v in await live_servers(p))
        assert labels == ["first", "first"]

        gone = await _delete(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
        assert await live_servers(p) == []
        assert all(k.deleted for k in await _children(p, sid))
    finally:
        await p.close()


async def test_os_heat_stack_takes_a_template_from_files_and_parameters(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "inner": {
                    "type": "OS::Heat::Stack",
                    "properties": {
                        "template": {"get_file": URL},
                        "parameters": {"label": "nested", "flavor": "m1.small"},
                    },
                }
            },
            outputs={"label": {"value": {"get_attr": ["inner", "label"]}}},
        )
        sid = await create(p, "holder", t, files={URL: SERVER_YAML})
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        rows = await resources(p, sid)
        assert _outputs(done, rows)["label"] == "nested"
        assert rows["inner"].attributes["outputs"]["cloud"] == "private"

        # An update of the parameters updates the child in place.
        [kid] = await _children(p, sid)
        t2 = dict(t)
        t2["resources"] = {
            "inner": {
                "type": "OS::Heat::Stack",
                "properties": {
                    "template": {"get_file": URL},
                    "parameters": {"label": "changed", "flavor": "m1.small"},
                },
            }
        }
        updated = await _update(p, sid, {"template": t2})
        assert (updated.action, updated.status) == ("UPDATE", "COMPLETE"), updated.status_reason
        [same] = await _children(p, sid)
        assert same.id == kid.id and (same.action, same.status) == ("UPDATE", "COMPLETE")
        assert _outputs(updated, await resources(p, sid))["label"] == "changed"
        # The label is server metadata: the child replaced its server.
        assert [v.metadata_["label"] for v in await live_servers(p)] == ["changed"]
    finally:
        await p.close()


async def test_the_resource_registry_maps_a_type_to_a_template(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        # Heat's rule: inside the template OS::Nova::Server is mapped to, it is the real one.
        wrapper = SERVER_YAML.replace(
            "label:\n    type: string", "label:\n    type: string\n    default: w"
        )
        t = hot({"a": {"type": "OS::Nova::Server", "properties": {"label": "x"}}})
        env = {"resource_registry": {"OS::Nova::Server": URL}}
        sid = await create(p, "mapped", t, files={URL: wrapper}, environment=env)
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        [kid] = await _children(p, sid)
        assert [v.metadata_["label"] for v in await live_servers(p)] == ["x"]
        assert (await resources(p, kid.id))["vm"].type == "OS::Nova::Server"
    finally:
        await p.close()


async def test_a_failing_child_fails_its_parent_with_the_root_cause(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        inner = hot({"bad": {"type": "OS::Heat::TestResource", "properties": {"fail": True}}})
        t = hot(
            {
                "inner": {"type": "OS::Heat::Stack", "properties": {"template": inner}},
                "after": server(metadata={"x": {"get_resource": "inner"}}),
            }
        )
        sid = await create(p, "fails", t)
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "resources.inner" in done.status_reason
        assert "Test Resource failed" in done.status_reason
        assert "after" not in await resources(p, sid)
        assert await live_servers(p) == []
        gone = await _delete(p, sid)
        assert gone.status == "COMPLETE", gone.status_reason
        assert all(k.deleted for k in await _children(p, sid))
    finally:
        await p.close()


async def test_deleting_a_parent_mid_create_deletes_the_child_and_its_servers(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot({"one": {"type": URL, "properties": {"label": "x"}}})
        sid = await create(p, "hurry", t, files={URL: SERVER_YAML})
        for _ in range(3):
            await p.worker.orchestration.run_once()
        [kid] = await _children(p, sid)
        assert kid.status == "IN_PROGRESS"
        assert len(await live_servers(p)) == 1  # the child's server is on its way
        gone = await _delete(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
        assert (await stack(p, kid.id)).deleted
        assert await live_servers(p) == []
    finally:
        await p.close()


SELF = "file:///t/self.yaml"
SELF_YAML = """\
heat_template_version: 2018-08-31
resources:
  again: {type: "file:///t/self.yaml"}
"""


@pytest.mark.parametrize(
    ("resources_", "files", "words"),
    [
        ({"r": {"type": SELF}}, {SELF: SELF_YAML}, "Recursion depth exceeds 5"),
        ({"r": {"type": URL, "properties": {"label": "x", "size": 1}}}, {URL: SERVER_YAML}, "size"),
        ({"r": {"type": URL, "properties": {}}}, {URL: SERVER_YAML}, "label"),
        ({"r": {"type": URL, "properties": {"label": "x"}}}, {}, "not in the stack's files"),
        ({"r": {"type": URL}}, {URL: "a: [b"}, "not valid YAML"),
        ({"r": {"type": URL}}, {URL: "x: &a [1]\ny: *a\n"}, "aliases"),
        (
            {"r": {"type": URL, "properties": {"label": "x", "flavor": "m9.huge"}}},
            {URL: SERVER_YAML},
            "m9.huge",
        ),
        (
            {"r": {"type": "OS::Heat::Stack", "properties": {"template": {"resources": 3}}}},
            {},
            "nested template",
        ),
        (
            {"r": {"type": "OS::Heat::Stack", "properties": {"template": "[1, 2]"}}},
            {},
            "must be a map",
        ),
    ],
)
async def test_bad_nested_templates_are_refused_before_anything_exists(
    db_url: str, tmp_path: Path, resources_: dict[str, Any], files: dict[str, str], words: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        with pytest.raises(InvalidRequest, match=words):
            await create(p, "bad", hot(resources_), files=files)
        async with p.db.read() as s:
            assert (await s.execute(select(Stack))).first() is None
    finally:
        await p.close()


async def test_a_registry_that_canopy_cannot_honour_is_refused(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot({"a": {"type": "OS::Heat::Value", "properties": {"value": 1}}})
        for env, words in [
            ({"resource_registry": {"resources": {"a": {"hooks": "pre-create"}}}}, "hooks"),
            ({"resource_registry": {"OS::*": "x.yaml"}}, "wildcard"),
            ({"resource_registry": {"My::T": 3}}, "My::T"),
            ({"resource_registry": ["x"]}, "must be a map"),
        ]:
            with pytest.raises(InvalidRequest, match=words):
                await create(p, "bad", t, environment=env)
    finally:
        await p.close()


async def test_the_nested_templates_checked_per_request_are_bounded(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        # A 100 KB file used by 100 resources: 10 MB to check, more than the bound.
        big = SERVER_YAML.replace("resources:", "description: " + "x" * 100_000 + "\nresources:")
        t = hot({f"r{i}": {"type": URL, "properties": {"label": "x"}} for i in range(100)})
        with pytest.raises(InvalidRequest, match="too large"):
            await create(p, "big", t, files={URL: big})
        # Ten of them are fine.
        t = hot({f"r{i}": {"type": URL, "properties": {"label": "x"}} for i in range(10)})
        assert await create(p, "fine", t, files={URL: big})
    finally:
        await p.close()


async def test_a_step_that_dies_after_writing_a_child_keeps_no_child(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canopy.orchestration.resources.simple import TestResource

    from .test_crash import _successor

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "inner": {"type": URL, "properties": {"label": "x"}},
                "zz": {"type": "OS::Heat::TestResource"},  # started after inner
            }
        )
        sid = await create(p, "crashy", t, files={URL: SERVER_YAML})
        real = TestResource.create

        async def dies(self: TestResource, step: object, res: object) -> object:
            raise RuntimeError("kill -9")

        monkeypatch.setattr(TestResource, "create", dies)
        assert await p.worker.orchestration.run_once() == 1
        monkeypatch.setattr(TestResource, "create", real)
        # The child stack was written in the step that died: it went with it.
        assert await _children(p, sid) == []
        assert await resources(p, sid) == {}
        nxt = _successor(p)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        done = await settle(nxt, sid)
        assert done.status == "COMPLETE", done.status_reason
        [kid] = await _children(p, sid)
        assert (await resources(p, sid))["inner"].physical_resource_id == kid.id
        assert len(await live_servers(p)) == 1
    finally:
        await p.close()
