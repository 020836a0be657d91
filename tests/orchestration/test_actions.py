"""Suspend, resume and check: servers stopped and started through the server service, in
dependency order, and each resource's observed state confirmed."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.domain.errors import Conflict
from canopy.orchestration.service import StackService
from canopy.orchestration.stack_actions import act
from canopy.store.models import Server
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, events, hot, live_servers, resources, server, settle

APP = hot(
    {
        "db": server(),
        "web": server(metadata={"db": {"get_resource": "db"}}),
        "label": {"type": "OS::Heat::Value", "properties": {"value": "app"}},
    }
)


async def action(p: Plane, sid: str, name: str) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        await act(s, await svc.find(s, p.ctx.project_id, sid, lock=True), name, p.clock)


async def test_suspend_stops_the_servers_and_resume_starts_them(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "app", APP)
        assert (await settle(p, sid)).status == "COMPLETE"
        await action(p, sid, "suspend")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("SUSPEND", "COMPLETE"), done.status_reason
        assert {s.status for s in await live_servers(p)} == {"SHUTOFF"}
        rows = await resources(p, sid)
        assert {(r.action, r.status) for r in rows.values()} == {("SUSPEND", "COMPLETE")}
        order = [
            (e.resource_name, e.status)
            for e in await events(p, sid)
            if e.action == "SUSPEND" and e.resource_name != "app"
        ]
        # web needs db: web is suspended first, db once web is.
        assert order.index(("web", "COMPLETE")) < order.index(("db", "IN_PROGRESS"))

        await action(p, sid, "resume")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("RESUME", "COMPLETE"), done.status_reason
        assert {s.status for s in await live_servers(p)} == {"ACTIVE"}
        order = [
            (e.resource_name, e.status)
            for e in await events(p, sid)
            if e.action == "RESUME" and e.resource_name != "app"
        ]
        assert order.index(("db", "COMPLETE")) < order.index(("web", "IN_PROGRESS"))
    finally:
        await p.close()


async def test_check_confirms_each_resource_and_finds_a_lost_server(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "chk", APP)
        assert (await settle(p, sid)).status == "COMPLETE"
        await action(p, sid, "check")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CHECK", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert {(r.action, r.status) for r in rows.values()} == {("CHECK", "COMPLETE")}
        # A server broken behind the stack's back: check says which, and why.
        async with p.db.session() as s:
            broken = await s.get(Server, rows["web"].server_id)
            assert broken is not None
            broken.status = "ERROR"
            broken.fault_message = "host lost"
        await action(p, sid, "check")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CHECK", "FAILED")
        assert "resources.web" in done.status_reason and "host lost" in done.status_reason
        assert (await resources(p, sid))["db"].status == "COMPLETE"
    finally:
        await p.close()


async def test_resume_needs_a_suspended_stack_and_actions_wait_for_the_current_one(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "busy", APP)
        with pytest.raises(Conflict):
            await action(p, sid, "suspend")  # still being created
        with pytest.raises(Conflict):
            await action(p, sid, "cancel_update")  # no update going on
        assert (await settle(p, sid)).status == "COMPLETE"
        with pytest.raises(Conflict):
            await action(p, sid, "resume")  # never suspended
    finally:
        await p.close()


GROUPS = hot(
    {
        "rg": {
            "type": "OS::Heat::ResourceGroup",
            "properties": {"count": 2, "resource_def": server()},
        },
        "asg": {
            "type": "OS::Heat::AutoScalingGroup",
            "properties": {"min_size": 1, "max_size": 3, "resource": server()},
        },
    }
)


async def test_groups_are_suspended_resumed_and_checked_with_their_members(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "grp", GROUPS)
        assert (await settle(p, sid)).status == "COMPLETE"
        assert len(await live_servers(p)) == 3
        await action(p, sid, "suspend")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("SUSPEND", "COMPLETE"), done.status_reason
        assert [s.status for s in await live_servers(p)] == ["SHUTOFF"] * 3
        rows = await resources(p, sid)
        assert {(r.action, r.status) for r in rows.values()} == {("SUSPEND", "COMPLETE")}
        assert len(rows) == 5  # the groups and their members

        await action(p, sid, "resume")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("RESUME", "COMPLETE"), done.status_reason
        assert [s.status for s in await live_servers(p)] == ["ACTIVE"] * 3

        await action(p, sid, "check")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CHECK", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert {(r.action, r.status) for r in rows.values()} == {("CHECK", "COMPLETE")}
        # A member's server lost behind the stack's back: its group's check fails.
        async with p.db.session() as s:
            lost = await s.get(Server, rows["rg.1"].server_id)
            assert lost is not None
            lost.deleted = True
        await action(p, sid, "check")
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CHECK", "FAILED")
        assert "resources.rg: resources.rg.1: Server" in done.status_reason, done.status_reason
        assert (await resources(p, sid))["asg"].status == "COMPLETE"
    finally:
        await p.close()
