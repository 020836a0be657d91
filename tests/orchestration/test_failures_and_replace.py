"""A boot that ends in ERROR fails the stack with its root cause and starts nothing after
it; an update that must replace a server makes the new one before deleting the old."""

from __future__ import annotations

from pathlib import Path

from canopy.orchestration.service import StackService
from canopy.store.models import Server
from tests.controllers.harness import Plane, make_plane

from .helpers import (
    CLOUDS,
    create,
    events,
    hot,
    live_servers,
    resources,
    server,
    settle,
    stack,
)

BROKEN = """
[[clouds]]
name = "broken"
tier = 0
[clouds.sim]
hosts = 4
boot_seconds = 2
api_latency_ms = 5
boot_failure_rate = 1.0
"""


async def update(p: Plane, sid: str, template: dict[str, object]) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        stack = await svc.find(s, p.ctx.project_id, sid, lock=True)
        await svc.update(s, p.ctx, stack, {"template": template}, patch=False)


async def test_a_boot_that_ends_in_error_fails_the_stack_with_the_root_cause(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=BROKEN)
    try:
        t = hot(
            {
                "vm": server(),
                "after": {
                    "type": "OS::Heat::Value",
                    "properties": {"value": {"get_attr": ["vm", "name"]}},
                },
                "next_vm": server(metadata={"first": {"get_resource": "vm"}}),
            }
        )
        sid = await create(p, "boots-badly", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        # The root cause: the resource, that its server went to ERROR, and the cloud's fault.
        assert "resources.vm" in done.status_reason
        assert "ResourceInError" in done.status_reason, done.status_reason
        rows = await resources(p, sid)
        assert rows["vm"].status == "FAILED"
        assert "after" not in rows and "next_vm" not in rows  # dependents never started
        async with p.db.read() as s:
            failed = await s.get(Server, rows["vm"].server_id)
            assert failed is not None and failed.status == "ERROR"
            assert failed.fault_message and failed.fault_message in done.status_reason
        # Only the failing server was ever asked for.
        assert [s.id for s in await p.servers()] == [rows["vm"].server_id]
        last = (await events(p, sid))[-1]
        assert (last.resource_name, last.status) == ("boots-badly", "FAILED")
        assert last.status_reason == done.status_reason
    finally:
        await p.close()


async def test_a_replacing_update_creates_the_new_server_before_deleting_the_old(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "replace", hot({"vm": server(flavor="m1.small")}))
        assert (await settle(p, sid)).status == "COMPLETE"
        [old] = await live_servers(p)
        # The flavor does not allow an update in place: the server is replaced.
        await update(p, sid, hot({"vm": server(flavor="m1.medium")}))
        seen: list[int] = []  # live servers after each step of the plane
        for _ in range(60):
            if (await stack(p, sid)).status != "IN_PROGRESS":
                break
            await p.step()
            seen.append(len(await live_servers(p)))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        [new] = await live_servers(p)
        assert new.id != old.id and new.flavor_id != old.flavor_id
        assert new.status == "ACTIVE"
        # Both existed at once, and the old one was only deleted once the new was ACTIVE.
        assert 2 in seen and max(seen) == 2, seen
        rows = await resources(p, sid)
        assert list(rows) == ["vm"] and rows["vm"].server_id == new.id  # no orphan row
        async with p.db.read() as s:
            gone = await s.get(Server, old.id)
            assert gone is not None and gone.deleted
        order = [
            (e.action, e.status, e.physical_resource_id)
            for e in await events(p, sid)
            if e.resource_name == "vm"
        ]
        new_done = order.index(("CREATE", "COMPLETE", new.id))
        old_delete = order.index(("DELETE", "IN_PROGRESS", old.id))
        assert new_done < old_delete, order
    finally:
        await p.close()
