"""The engine walks a stack's graph on the controller runtime: dependency order, parallel
siblings, root-cause failures, delete, and a worker that dies mid-create."""

from __future__ import annotations

from pathlib import Path

from canopy.orchestration.outputs import bound_of, outputs
from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, events, hot, live_servers, resources, server, settle, stack

THREE_LEVELS = hot(
    {
        "password": {"type": "OS::Heat::RandomString", "properties": {"length": 12}},
        "web": server(metadata={"secret": {"get_resource": "password"}}),
        "db": server(metadata={"secret": {"get_resource": "password"}}),
        "summary": {
            "type": "OS::Heat::Value",
            "properties": {
                "value": {
                    "list_join": [
                        ",",
                        [{"get_attr": ["web", "name"]}, {"get_attr": ["db", "name"]}],
                    ]
                }
            },
        },
    },
    outputs={
        "names": {"value": {"get_attr": ["summary", "value"]}},
        "web_cloud": {"value": {"get_attr": ["web", "canopy", "cloud"]}},
    },
)


async def test_a_three_level_graph_creates_in_order_with_parallel_siblings(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "three", THREE_LEVELS)
        # One pass: the random string completes at once and releases both servers, which
        # are started in the same pass; the value waits for them.
        assert await p.worker.orchestration.run_once() == 1
        rows = await resources(p, sid)
        assert rows["password"].status == "COMPLETE"
        assert {rows["web"].status, rows["db"].status} == {"IN_PROGRESS"}
        assert rows["web"].server_id and rows["db"].server_id
        assert "summary" not in rows
        assert len(await live_servers(p)) == 2

        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert rows["summary"].created_at >= max(rows["web"].updated_at, rows["db"].updated_at)
        names = f"{rows['web'].attributes['name']},{rows['db'].attributes['name']}"
        assert rows["summary"].attributes["value"] == names
        # The servers were created with the random string (resolved) in their metadata.
        secret = rows["password"].attributes["value"]
        assert len(secret) == 12
        assert all(s.metadata_["secret"] == secret for s in await live_servers(p))
        outs = {
            o["output_key"]: o for o in outputs(bound_of(done, "RegionOne"), list(rows.values()))
        }
        assert outs["names"]["output_value"] == names
        assert outs["web_cloud"]["output_value"] == "private"
        # Events: the stack's start and end, and each resource's.
        seen = [(e.resource_name, e.action, e.status) for e in await events(p, sid)]
        assert seen[0] == ("three", "CREATE", "IN_PROGRESS")
        assert seen[-1] == ("three", "CREATE", "COMPLETE")
        assert seen.index(("summary", "CREATE", "IN_PROGRESS")) > seen.index(
            ("web", "CREATE", "COMPLETE")
        )
    finally:
        await p.close()


async def test_a_failure_stops_dependents_and_names_the_root_cause(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "bad": {"type": "OS::Heat::TestResource", "properties": {"fail": True}},
                "after": {
                    "type": "OS::Heat::Value",
                    "properties": {"value": {"get_attr": ["bad", "output"]}},
                },
                "vm": server(metadata={"x": {"get_resource": "after"}}),
            }
        )
        sid = await create(p, "failing", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert "resources.bad" in done.status_reason
        assert "Test Resource failed" in done.status_reason
        rows = await resources(p, sid)
        assert rows["bad"].status == "FAILED"
        assert "after" not in rows and "vm" not in rows  # never started
        assert await live_servers(p) == []
    finally:
        await p.close()


async def test_an_unknown_flavor_from_a_value_fails_the_server_resource(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "size": {"type": "OS::Heat::Value", "properties": {"value": "m9.huge"}},
                "vm": server(flavor={"get_attr": ["size", "value"]}),
            }
        )
        sid = await create(p, "unknown-flavor", t)
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "resources.vm" in done.status_reason
        assert "Flavor m9.huge could not be found" in done.status_reason
    finally:
        await p.close()


async def test_delete_walks_backwards_and_leaves_no_server(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "gone", THREE_LEVELS)
        assert (await settle(p, sid)).status == "COMPLETE"
        assert len(await live_servers(p)) == 2
        from canopy.orchestration.service import StackService

        async with p.db.session() as s:
            svc = StackService(p.settings, p.clock)
            await svc.delete(s, await svc.find(s, p.ctx.project_id, sid, lock=True))
        done = await settle(p, sid)
        assert (done.action, done.status, done.deleted) == ("DELETE", "COMPLETE", True)
        assert await live_servers(p) == []
        assert await resources(p, sid) == {}
        order = [
            (e.resource_name, e.status)
            for e in await events(p, sid)
            if e.action == "DELETE" and e.resource_name != "gone"
        ]
        # The value (which needs both servers) goes first, the random string last.
        assert order[0] == ("summary", "IN_PROGRESS")
        assert order[-1] == ("password", "COMPLETE")
    finally:
        await p.close()


async def test_a_waiting_resource_wakes_the_loop_at_its_time(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "slow": {
                    "type": "OS::Heat::TestResource",
                    "properties": {"value": "v", "action_wait_secs": {"create": 30}},
                },
                "next": {
                    "type": "OS::Heat::Value",
                    "properties": {"value": {"get_attr": ["slow", "output"]}},
                },
            }
        )
        sid = await create(p, "waits", t)
        orch = p.worker.orchestration
        assert await orch.run_once() == 1
        assert orch.next_due_in(p.clock.now()) == 30.0
        p.clock.advance(29.9)
        assert await orch.run_once() == 0
        p.clock.advance(0.1)
        assert await orch.run_once() == 1
        done = await stack(p, sid)
        assert done.status == "COMPLETE"
        assert (await resources(p, sid))["next"].attributes["value"] == "v"
    finally:
        await p.close()
