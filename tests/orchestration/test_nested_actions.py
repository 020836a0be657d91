"""Suspend, resume and check reach nested stacks at any depth: each nested stack takes the
action itself (SUSPEND_COMPLETE and so on, with its events), and its parent's resource
completes or fails with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from canopy.orchestration import nesting
from canopy.store.models import Server, Stack
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, events, hot, live_servers, resources, server, settle
from .test_actions import action

# A template resource holding a server and an OS::Heat::Stack holding another server:
# the parent's servers are at depths 0, 1 and 2.
LAYER = """\
heat_template_version: 2018-08-31
resources:
  vm:
    type: OS::Nova::Server
    properties: {flavor: m1.small, image: cirros}
  deeper:
    type: OS::Heat::Stack
    properties:
      template:
        heat_template_version: 2018-08-31
        resources:
          bottom:
            type: OS::Nova::Server
            properties: {flavor: m1.small, image: cirros}
"""
URL = "file:///t/layer.yaml"
TEMPLATE = hot(
    {
        "top": {"type": URL},
        "own": server(),
        "after": server(metadata={"needs": {"get_resource": "top"}}),
    }
)


async def _tree(p: Plane, root: str) -> dict[str, Stack]:
    """Every stack under `root` (itself included), by the path of resources to it."""
    found: dict[str, Stack] = {}
    todo = [("", root)]
    async with p.db.read() as s:
        while todo:
            name, sid = todo.pop()
            row = await s.get(Stack, sid)
            assert row is not None
            found[name] = row
            kids = await s.execute(select(Stack).where(Stack.owner_id == sid))
            todo += [(f"{name}/{k.owner_resource}".lstrip("/"), k.id) for k in kids.scalars()]
    return found


async def _states(p: Plane, root: str) -> dict[str, tuple[str, str]]:
    return {k: (v.action, v.status) for k, v in (await _tree(p, root)).items()}


async def test_suspend_resume_and_check_reach_every_nested_stack(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "outer", TEMPLATE, files={URL: LAYER})
        assert (await settle(p, sid)).status == "COMPLETE"
        assert len(await live_servers(p)) == 4

        await action(p, sid, "suspend")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("SUSPEND", "COMPLETE"), done.status_reason
        assert await _states(p, sid) == {
            "": ("SUSPEND", "COMPLETE"),
            "top": ("SUSPEND", "COMPLETE"),
            "top/deeper": ("SUSPEND", "COMPLETE"),
        }
        assert [s.status for s in await live_servers(p)] == ["SHUTOFF"] * 4
        tree = await _tree(p, sid)
        for name in ("top", "top/deeper"):
            rows = await resources(p, tree[name].id)
            assert {(r.action, r.status) for r in rows.values()} == {("SUSPEND", "COMPLETE")}
            said = [
                (e.action, e.status)
                for e in await events(p, tree[name].id)
                if e.resource_name == tree[name].name  # the nested stack's own events
            ]
            assert said[-2:] == [("SUSPEND", "IN_PROGRESS"), ("SUSPEND", "COMPLETE")]
        # Backwards, as for any resource: "after" needs "top", so it was suspended first.
        order = [
            (e.resource_name, e.status)
            for e in await events(p, sid)
            if e.action == "SUSPEND" and e.resource_name in ("after", "top")
        ]
        assert order.index(("after", "COMPLETE")) < order.index(("top", "IN_PROGRESS"))

        await action(p, sid, "resume")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("RESUME", "COMPLETE"), done.status_reason
        assert set((await _states(p, sid)).values()) == {("RESUME", "COMPLETE")}
        assert [s.status for s in await live_servers(p)] == ["ACTIVE"] * 4

        await action(p, sid, "check")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CHECK", "COMPLETE"), done.status_reason
        assert set((await _states(p, sid)).values()) == {("CHECK", "COMPLETE")}
        tree = await _tree(p, sid)
        bottom = (await resources(p, tree["top/deeper"].id))["bottom"]
        assert (bottom.action, bottom.status) == ("CHECK", "COMPLETE")
        checks = [e for e in await events(p, sid) if e.action == "CHECK"]
        # Every resource of the outer stack was checked once, the nested one included.
        assert sorted(e.resource_name for e in checks if e.status == "IN_PROGRESS") == [
            "after",
            "outer",
            "own",
            "top",
        ]

        # A server two levels down, lost behind the stack's back: each level's check fails
        # and the outer stack says where, down to the root cause.
        async with p.db.session() as s:
            lost = await s.get(Server, bottom.server_id)
            assert lost is not None
            lost.deleted = True
        await action(p, sid, "check")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CHECK", "FAILED")
        assert done.status_reason.startswith(
            "Resource CHECK failed: resources.top: Nested stack CHECK failed: Resource CHECK "
            "failed: resources.deeper: Nested stack CHECK failed: Resource CHECK failed: "
            f"resources.bottom: Server {bottom.server_id} does not exist."
        ), done.status_reason
        assert (await _states(p, sid))["top/deeper"] == ("CHECK", "FAILED")
    finally:
        await p.close()


async def test_a_nested_stack_gone_fails_the_suspend_of_its_resource(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "orphaned", hot({"top": {"type": URL}}), files={URL: LAYER})
        assert (await settle(p, sid)).status == "COMPLETE"
        tree = await _tree(p, sid)
        async with p.db.session() as s:
            child = await s.get(Stack, tree["top"].id)
            assert child is not None
            child.deleted = True
        await action(p, sid, "suspend")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("SUSPEND", "FAILED")
        assert done.status_reason == (
            "Resource SUSPEND failed: resources.top: Cannot suspend top, stack not created"
        )
    finally:
        await p.close()


async def test_a_step_that_dies_starting_a_child_suspend_keeps_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "crash", hot({"top": {"type": URL}}), files={URL: LAYER})
        assert (await settle(p, sid)).status == "COMPLETE"
        real = nesting.begin_action
        monkeypatch.setattr(
            "canopy.orchestration.nested_actions.begin_action",
            lambda *a: (real(*a), (_ for _ in ()).throw(RuntimeError("kill -9"))),
        )
        await action(p, sid, "suspend")
        await p.worker.orchestration.run_once()
        # Rolled back: the child was not touched, the parent's resource not begun.
        states = await _states(p, sid)
        assert states["top"] == ("CREATE", "COMPLETE")
        assert states[""] == ("SUSPEND", "IN_PROGRESS")
        assert (await resources(p, sid))["top"].action == "CREATE"
        monkeypatch.undo()
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("SUSPEND", "COMPLETE"), done.status_reason
        assert set((await _states(p, sid)).values()) == {("SUSPEND", "COMPLETE")}
    finally:
        await p.close()


async def test_a_groups_nested_members_are_suspended_and_checked_too(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        group = {
            "type": "OS::Heat::ResourceGroup",
            "properties": {"count": 2, "resource_def": {"type": URL}},
        }
        sid = await create(p, "rgn", hot({"rg": group}), files={URL: LAYER})
        assert (await settle(p, sid)).status == "COMPLETE"
        assert len(await live_servers(p)) == 4
        for name, state in (("suspend", "SUSPEND"), ("resume", "RESUME"), ("check", "CHECK")):
            await action(p, sid, name)
            done = await settle(p, sid)
            assert (done.action, done.status) == (state, "COMPLETE"), done.status_reason
            states = await _tree(p, sid)
            # The stack, its two members' stacks and their "deeper" stacks.
            assert sorted(states) == ["", "rg.0", "rg.0/deeper", "rg.1", "rg.1/deeper"]
            assert {(s.action, s.status) for s in states.values()} == {(state, "COMPLETE")}
            want = "SHUTOFF" if state == "SUSPEND" else "ACTIVE"
            assert [s.status for s in await live_servers(p)] == [want] * 4
    finally:
        await p.close()
