"""A failed adopt (rollback.py, resources/adopt.py `let_go`): rolled back as Heat's adopt
rollback is (the stack lets go of what it adopted, nothing is deleted) when rollback is on;
left ADOPT_FAILED otherwise. A server whose adopt did not succeed is never deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canopy.domain.states import DesiredState
from tests.controllers.harness import Plane, make_plane

from .helpers import (
    CLOUDS,
    create,
    delete_stack,
    events,
    hot,
    live_servers,
    resources,
    server,
    settle,
    stack,
)

TEMPLATE = hot(
    {
        "ready": server(),
        "building": server(),
        "missing": {"type": "OS::Heat::None"},  # no entry in the data: fails the adopt
    }
)


async def _servers(p: Plane) -> tuple[str, str]:
    """One ACTIVE server and one still building (no worker has placed it yet)."""
    [ready] = await p.create(name="ready")

    async def active() -> bool:
        return [s.status for s in await live_servers(p)] == ["ACTIVE"]

    await p.run_until(active)
    [building] = await p.create(name="building")
    return ready, building


async def _adopt(p: Plane, ready: str, building: str, **body: Any) -> str:
    data = {
        "template": TEMPLATE,
        "resources": {"ready": {"resource_id": ready}, "building": {"resource_id": building}},
    }
    return await create(p, "adopted", None, adopt_stack_data=data, **body)  # type: ignore[arg-type]


async def test_a_failed_adopt_with_rollback_lets_go_of_everything_and_deletes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ready, building = await _servers(p)
        sid = await _adopt(p, ready, building, disable_rollback=False)
        assert await p.worker.orchestration.run_once() == 1  # the adopt fails in one step
        failed = {(e.resource_name, e.action, e.status) for e in await events(p, sid)}
        assert ("adopted", "ADOPT", "FAILED") in failed
        assert ("ready", "ADOPT", "COMPLETE") in failed
        assert ("building", "ADOPT", "FAILED") in failed  # stopped: the stack failed
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
        assert await resources(p, sid) == {}  # the stack holds nothing any more
        kept = {s.id: s for s in await live_servers(p)}
        assert set(kept) == {ready, building}
        assert all(s.desired_state == DesiredState.ACTIVE for s in kept.values())
        stack_events = [
            (e.action, e.status) for e in await events(p, sid) if e.resource_name == "adopted"
        ]
        assert stack_events[-3:] == [
            ("ADOPT", "FAILED"),
            ("ROLLBACK", "IN_PROGRESS"),
            ("ROLLBACK", "COMPLETE"),
        ]
        # Let go of: both servers can be adopted again (no stack holds them).
        again = hot({"ready": server(), "building": server()})
        data = {
            "template": again,
            "resources": {"ready": {"resource_id": ready}, "building": {"resource_id": building}},
        }
        sid2 = await create(p, "again", None, adopt_stack_data=data)  # type: ignore[arg-type]
        done2 = await settle(p, sid2)
        assert (done2.action, done2.status) == ("ADOPT", "COMPLETE"), done2.status_reason
        rows = await resources(p, sid2)
        assert {rows["ready"].server_id, rows["building"].server_id} == {ready, building}
        # Deleting the stack that now owns them deletes them; the rolled-back one is empty.
        await delete_stack(p, sid)
        assert (await settle(p, sid)).status == "COMPLETE"
        assert {s.id for s in await live_servers(p)} == {ready, building}
    finally:
        await p.close()


async def test_without_rollback_the_stack_stays_adopt_failed_and_delete_spares_what_failed(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ready, building = await _servers(p)
        sid = await _adopt(p, ready, building)  # heatclient's default: rollback disabled
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ADOPT", "FAILED")
        assert done.status_reason == (
            "Resource ADOPT failed: resources.missing: Resource ID was not provided."
        )
        rows = await resources(p, sid)
        assert (rows["ready"].status, rows["ready"].server_id) == ("COMPLETE", ready)
        # The adopt of `building` never completed: the row holds no server.
        assert rows["building"].status == "FAILED"
        assert (rows["building"].server_id, rows["building"].physical_resource_id) == (None, "")
        await delete_stack(p, sid)
        gone = await settle(p, sid)
        assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), gone.status_reason

        async def deleted() -> bool:
            return ready not in {s.id for s in await live_servers(p)}

        await p.run_until(deleted)  # what the adopt took is the stack's: deleted with it
        left = {s.id: s for s in await live_servers(p)}
        assert set(left) == {building}  # what it did not take is not
        assert left[building].desired_state == DesiredState.ACTIVE
    finally:
        await p.close()


async def test_a_rolled_back_adopt_of_a_server_already_in_a_stack_leaves_that_stack_whole(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        owner = await create(p, "owner", hot({"vm": server()}))
        assert (await settle(p, owner)).status == "COMPLETE"
        held = (await resources(p, owner))["vm"].server_id
        assert held is not None
        data = {"template": hot({"vm": server()}), "resources": {"vm": {"resource_id": held}}}
        sid = await create(
            p,
            "thief",
            None,  # type: ignore[arg-type]
            adopt_stack_data=data,
            disable_rollback=False,
        )
        done = await settle(p, sid)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
        assert (await resources(p, owner))["vm"].server_id == held
        assert held in {s.id for s in await live_servers(p)}
        assert (await stack(p, owner)).status == "COMPLETE"
    finally:
        await p.close()


async def test_a_stack_deleted_while_its_adopt_waits_spares_the_server_not_yet_taken(
    db_url: str, tmp_path: Path
) -> None:
    """resources/adopt.py `let_go`: a server is taken (`server_id` set) before its adopt is
    checked, and one still building "would otherwise be deleted by a rollback, a stack
    delete or an update's replacement, though the adopt never made it the stack's". The
    rollback and the failure paths let go of it; a stack delete while the adopt waits for
    the server does not: the delete walk deletes the server, which the adopt never took."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        _, building = await _servers(p)
        data = {
            "template": hot({"building": server()}),
            "resources": {"building": {"resource_id": building}},
        }
        sid = await create(p, "adopting", None, adopt_stack_data=data)  # type: ignore[arg-type]
        await p.worker.orchestration.run_once()
        row = (await resources(p, sid))["building"]
        assert (row.action, row.status) == ("ADOPT", "IN_PROGRESS")  # waiting for the server
        await delete_stack(p, sid)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("DELETE", "COMPLETE"), done.status_reason
        for _ in range(10):
            await p.step()
        left = {s.id: s for s in await live_servers(p)}
        assert building in left, "the server the adopt never took was deleted with the stack"
        assert left[building].desired_state == DesiredState.ACTIVE
    finally:
        await p.close()


async def test_a_stack_deleted_while_members_and_a_child_adopt_spares_their_servers(
    db_url: str, tmp_path: Path
) -> None:
    """The same for a group's member and a nested stack's server still adopting: the
    delete lets go of them (nesting.all_absent, for the stack and each child), and deletes
    the member whose adopt completed."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        ready, building = await _servers(p)
        [inner] = await p.create(name="inner")  # building too
        child = hot({"vm": server()})
        t = hot(
            {
                "group": {
                    "type": "OS::Heat::ResourceGroup",
                    "properties": {"count": 2, "resource_def": server()},
                },
                "nested": {"type": "OS::Heat::Stack", "properties": {"template": child}},
            }
        )
        entries = {"0": {"resource_id": ready}, "1": {"resource_id": building}}
        data = {
            "template": t,
            "resources": {
                "group": {"resources": entries},
                "nested": {"resources": {"vm": {"resource_id": inner}}},
            },
        }
        sid = await create(p, "adopting", None, adopt_stack_data=data)  # type: ignore[arg-type]
        for _ in range(3):
            await p.worker.orchestration.run_once()
        rows = await resources(p, sid)
        assert (rows["group.0"].status, rows["group.0"].server_id) == ("COMPLETE", ready)
        assert (rows["group.1"].action, rows["group.1"].status) == ("ADOPT", "IN_PROGRESS")
        assert rows["group.1"].server_id == building
        kid = rows["nested"].physical_resource_id
        assert (await resources(p, kid))["vm"].server_id == inner  # taken, still building
        assert (await resources(p, kid))["vm"].status == "IN_PROGRESS"
        await delete_stack(p, sid)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("DELETE", "COMPLETE"), done.status_reason

        async def deleted() -> bool:
            return ready not in {s.id for s in await live_servers(p)}

        await p.run_until(deleted)  # the member the adopt took goes with the stack
        left = {s.id: s for s in await live_servers(p)}
        assert set(left) == {building, inner}
        assert {s.desired_state for s in left.values()} == {DesiredState.ACTIVE}
    finally:
        await p.close()
