"""OS::Heat::ResourceGroup: members as rows of the stack, bursting across tiers, `%index%`,
the group's attributes, and scaling `count` (and removal_policies) by stack update."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canopy.orchestration.outputs import bound_of, outputs
from canopy.orchestration.service import StackService
from canopy.store.models import StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle


def group(count: int, **extra: Any) -> dict[str, Any]:
    return hot(
        {
            "grp": {
                "type": "OS::Heat::ResourceGroup",
                "properties": {
                    "count": count,
                    "resource_def": server(name="web-%index%"),
                    **extra,
                },
            },
        },
        outputs={
            "names": {"value": {"get_attr": ["grp", "name"]}},
            "refs": {"value": {"get_attr": ["grp", "refs"]}},
            "zero": {"value": {"get_attr": ["grp", "resource.0"]}},
            "zero_cloud": {"value": {"get_attr": ["grp", "resource.0.canopy", "cloud"]}},
            "by_index": {"value": {"get_attr": ["grp", "attributes", "name"]}},
        },
    )


def members(rows: dict[str, StackResource]) -> dict[str, StackResource]:
    return {n: r for n, r in rows.items() if r.group_id is not None}


async def update(p: Plane, stack_id: str, template: dict[str, Any]) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        stack = await svc.find(s, p.ctx.project_id, stack_id, lock=True)
        await svc.update(s, p.ctx, stack, {"template": template}, patch=False)


async def test_a_group_of_30_bursts_and_each_member_says_where_and_why(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "thirty", group(30))
        done = await settle(p, sid, steps=300)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        grp = rows["grp"]
        mem = members(rows)
        assert sorted(mem) == sorted(f"grp.{i}" for i in range(30))
        assert all(m.group_id == grp.id and m.status == "COMPLETE" for m in mem.values())
        clouds = {n: m.attributes["canopy"]["cloud"] for n, m in mem.items()}
        # private holds 6 small servers under the 80% threshold; the rest burst.
        assert sorted(clouds.values()).count("private") == 6
        assert sorted(clouds.values()).count("public") == 24
        for m in mem.values():
            reason = m.attributes["canopy"]["reason"]
            assert reason, m.name
            if m.attributes["canopy"]["cloud"] == "public":
                assert "burst to tier 1" in reason
        # %index% substituted in each member's name.
        assert {m.attributes["name"] for m in mem.values()} == {f"web-{i}" for i in range(30)}
        assert len(await live_servers(p)) == 30
        # The group's attributes, as get_attr reads them.
        outs = {
            o["output_key"]: o["output_value"]
            for o in outputs(bound_of(done, "RegionOne"), list(rows.values()))
        }
        assert outs["names"] == [f"web-{i}" for i in range(30)]
        assert outs["refs"] == [mem[f"grp.{i}"].server_id for i in range(30)]
        assert outs["zero"] == mem["grp.0"].server_id
        assert outs["zero_cloud"] == clouds["grp.0"]
        assert outs["by_index"] == {str(i): f"web-{i}" for i in range(30)}
    finally:
        await p.close()


async def test_count_down_removes_the_highest_indexes_and_up_adds_new_ones(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "scaled", group(4))
        assert (await settle(p, sid)).status == "COMPLETE"
        before = {n: r.server_id for n, r in members(await resources(p, sid)).items()}

        await update(p, sid, group(2))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        after = members(await resources(p, sid))
        assert sorted(after) == ["grp.0", "grp.1"]
        assert {n: r.server_id for n, r in after.items()} == {
            "grp.0": before["grp.0"],
            "grp.1": before["grp.1"],
        }
        assert len(await live_servers(p)) == 2

        await update(p, sid, group(3))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        after = members(await resources(p, sid))
        assert sorted(after) == ["grp.0", "grp.1", "grp.2"]
        assert after["grp.0"].server_id == before["grp.0"]
        assert after["grp.2"].server_id not in before.values()
        assert len(await live_servers(p)) == 3

        # A named removal: index 1 goes and is not used again; the count stays 3.
        removal = [{"resource_list": ["1"]}]
        await update(p, sid, group(3, removal_policies=removal))
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        rows = await resources(p, sid)
        assert sorted(members(rows)) == ["grp.0", "grp.2", "grp.3"]
        assert rows["grp"].attributes["removed_rsrc_list"] == ["1"]
        assert len(await live_servers(p)) == 3

        # Deleting the stack deletes every member and its server.
        async with p.db.session() as s:
            svc = StackService(p.settings, p.clock)
            await svc.delete(s, await svc.find(s, p.ctx.project_id, sid, lock=True))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("DELETE", "COMPLETE"), done.status_reason
        assert await resources(p, sid) == {}
        assert await live_servers(p) == []
    finally:
        await p.close()


async def test_a_failing_member_fails_the_group_with_its_reason(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "grp": {
                    "type": "OS::Heat::ResourceGroup",
                    "properties": {
                        "count": 2,
                        "resource_def": {
                            "type": "OS::Heat::TestResource",
                            "properties": {"value": "v%index%", "fail": True},
                        },
                    },
                },
                "after": {
                    "type": "OS::Heat::Value",
                    "properties": {"value": {"get_attr": ["grp", "refs"]}},
                },
            }
        )
        sid = await create(p, "failing", t)
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "resources.grp: resources.grp.0" in done.status_reason
        assert "after" not in await resources(p, sid)
    finally:
        await p.close()


async def test_an_unsupported_member_type_or_bad_flavor_is_refused_before_anything_exists(
    db_url: str, tmp_path: Path
) -> None:
    from canopy.domain.errors import InvalidRequest

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        for resource_def, words in (
            ({"type": "OS::Neutron::Port"}, "could not be found"),
            (server(flavor="m1.nope"), "No Flavor matching m1.nope"),
        ):
            t = hot(
                {
                    "grp": {
                        "type": "OS::Heat::ResourceGroup",
                        "properties": {"count": 2, "resource_def": resource_def},
                    }
                }
            )
            try:
                await create(p, "bad", t)
            except InvalidRequest as e:
                assert words in str(e)
            else:
                raise AssertionError("accepted")
    finally:
        await p.close()


async def test_a_failed_group_is_repaired_in_place_by_an_update(
    db_url: str, tmp_path: Path
) -> None:
    def template(fail: bool) -> dict[str, Any]:
        return hot(
            {
                "grp": {
                    "type": "OS::Heat::ResourceGroup",
                    "properties": {
                        "count": 3,
                        "resource_def": {
                            "type": "OS::Heat::TestResource",
                            "properties": {
                                "value": "v%index%",
                                "fail": fail,
                            },
                        },
                    },
                }
            }
        )

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "repaired", hot({}))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, template(True))
        assert (await settle(p, sid)).status == "FAILED"
        before = await resources(p, sid)
        assert before["grp"].status == "FAILED"
        assert {m.status for m in members(before).values()} == {"FAILED"}
        await update(p, sid, template(False))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        after = await resources(p, sid)
        assert after["grp"].id == before["grp"].id  # the same group, updated
        assert after["grp.1"].id != before["grp.1"].id  # the failed members replaced
        assert after["grp.1"].attributes["output"] == "v1"
        assert {m.status for m in members(after).values()} == {"COMPLETE"}
    finally:
        await p.close()


MEMBER = """
heat_template_version: 2015-04-30
parameters:
  index: {type: number}
resources:
  vm:
    type: OS::Nova::Server
    properties:
      flavor: m1.small
      image: cirros
      name: {list_join: ["-", [member, {get_param: index}]]}
outputs:
  label:
    value: {list_join: ["-", [label, {get_param: index}]]}
"""


def file_group(count: int) -> dict[str, Any]:
    """hot/resource_group/resource_group_index_lookup.yaml's shape: members of a template
    file of the stack's files, each a nested stack."""
    return hot(
        {
            "grp": {
                "type": "OS::Heat::ResourceGroup",
                "properties": {
                    "count": count,
                    "resource_def": {
                        "type": "file:///t/member.yaml",
                        "properties": {"index": "%index%"},
                    },
                },
            }
        },
        outputs={"labels": {"value": {"get_attr": ["grp", "label"]}}},
    )


async def test_members_of_a_template_file_are_nested_stacks_resized_and_deleted(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    files = {"file:///t/member.yaml": MEMBER}
    try:
        sid = await create(p, "files", file_group(2), files=files)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert {r.type for r in members(rows).values()} == {"file:///t/member.yaml"}
        outs = outputs(bound_of(done, "RegionOne"), list(rows.values()))
        assert outs[0]["output_value"] == ["label-0", "label-1"]
        assert sorted(s.name for s in await live_servers(p)) == ["member-0", "member-1"]

        async with p.db.session() as s:
            svc = StackService(p.settings, p.clock)
            stack = await svc.find(s, p.ctx.project_id, sid, lock=True)
            await svc.update(s, p.ctx, stack, {"template": file_group(1)}, patch=True)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert [s.name for s in await live_servers(p)] == ["member-0"]

        async with p.db.session() as s:
            svc = StackService(p.settings, p.clock)
            await svc.delete(s, await svc.find(s, p.ctx.project_id, sid, lock=True))
        gone = await settle(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason
        assert await live_servers(p) == []
    finally:
        await p.close()
