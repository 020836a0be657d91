"""A step that meets an exception no check foresaw never leaves a stack IN_PROGRESS forever:
from a type's step it fails that resource (and the stack, with the root cause); anything
else rolls the step back and is retried, until the stack's deadline fails it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from canopy.orchestration import controller
from canopy.orchestration.resources.server_common import ServerBase
from canopy.orchestration.resources.simple import Value
from canopy.store.models import Stack
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, resources, server, settle, stack

AFTER = {"type": "OS::Heat::Value", "properties": {"value": "after"}, "depends_on": ["b"]}


async def _stepped_past_leases(p: Plane, n: int) -> None:
    """`n` passes of the orchestration loop, each after the last one's lease ran out."""
    for _ in range(n):
        await p.worker.orchestration.run_once()
        p.clock.advance(p.settings.controllers.lease_seconds + 1)


async def test_a_runtime_map_replace_of_wrong_types_fails_the_resource(
    db_url: str, tmp_path: Path
) -> None:
    """The audit's template: map_replace is given, through get_attr, a list as a new key."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        replaced = {"get_attr": ["a", "value"]}
        keys = {"keys": {"k": {"get_attr": ["c", "value"]}}}
        t = hot({
            "a": {"type": "OS::Heat::Value", "properties": {"value": {"k": 1}}},
            "c": {"type": "OS::Heat::Value", "properties": {"value": [1]}},
            "b": {
                "type": "OS::Heat::Value",
                "properties": {"value": {"map_replace": [replaced, keys]}},
            },
            "d": AFTER,
        })  # fmt: skip
        sid = await create(p, "rt", t, disable_rollback=True)
        done = await settle(p, sid, steps=20)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason.startswith("Resource CREATE failed: resources.b: ")
        assert "map_replace: the replacement of key 'k' must be a string" in done.status_reason
        assert "d" not in await resources(p, sid)  # its dependent never started
    finally:
        await p.close()


async def test_a_types_unexpected_error_fails_that_resource(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        real = Value.outputs

        def outputs(self: Value, props: Any) -> dict[str, Any]:
            if props.get("value") == "boom":
                return {"value": {}["missing"]}  # a bug: KeyError
            return real(self, props)

        monkeypatch.setattr(Value, "outputs", outputs)
        t = hot({"b": {"type": "OS::Heat::Value", "properties": {"value": "boom"}}, "d": AFTER})
        sid = await create(p, "buggy", t, disable_rollback=True)
        done = await settle(p, sid, steps=20)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason == "Resource CREATE failed: resources.b: KeyError: 'missing'"
        rows = await resources(p, sid)
        assert (rows["b"].action, rows["b"].status) == ("CREATE", "FAILED")
        assert rows["b"].status_reason == "KeyError: 'missing'"
        assert "d" not in rows
    finally:
        await p.close()


async def test_a_bulk_creates_unexpected_error_fails_each_of_its_resources(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:

        async def create_many(self: Any, step: Any, rows: Any, before: Any) -> Any:
            raise TypeError("unhashable type: 'list'")  # before its rows were written

        monkeypatch.setattr(ServerBase, "create_many", create_many)
        sid = await create(p, "vms", hot({"v1": server(), "v2": server()}), disable_rollback=True)
        done = await settle(p, sid, steps=20)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert "TypeError: unhashable type: 'list'" in done.status_reason
        rows = await resources(p, sid)
        assert {(r.name, r.status) for r in rows.values()} == {("v1", "FAILED"), ("v2", "FAILED")}
    finally:
        await p.close()


async def test_a_step_that_keeps_raising_fails_the_stack_at_its_deadline(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(
            p, "stuck", hot({"a": {"type": "OS::Heat::Value", "properties": {"value": 1}}})
        )

        async def prefetch(step: Any, rows: Any) -> None:
            raise RuntimeError("the engine's own bug")  # not a resource's: the step rolls back

        monkeypatch.setattr(controller, "prefetch", prefetch)
        await _stepped_past_leases(p, 3)
        assert (await stack(p, sid)).status == "IN_PROGRESS"  # retried: it may pass
        p.clock.advance(61 * 60)  # past the default 60 minutes
        await _stepped_past_leases(p, 1)
        done = await stack(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason == (
            "Timed out after 60 minutes (the last step failed: RuntimeError)"
        )
        assert done.next_attempt_at is None and done.claimed_by is None
        assert await p.worker.orchestration.run_once() == 0  # never stepped again
    finally:
        await p.close()


async def test_a_stuck_step_with_rollback_rolls_back_at_its_deadline(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(
            p,
            "stuck",
            hot({"a": {"type": "OS::Heat::Value", "properties": {"value": 1}}}),
            timeout_mins=5,
            disable_rollback=False,
        )
        broken = True
        real = controller.prefetch

        async def prefetch(step: Any, rows: Any) -> None:
            if broken:
                raise RuntimeError("the engine's own bug")
            await real(step, rows)

        monkeypatch.setattr(controller, "prefetch", prefetch)
        await _stepped_past_leases(p, 2)
        p.clock.advance(5 * 60)
        await _stepped_past_leases(p, 1)
        rolling = await stack(p, sid)
        assert (rolling.action, rolling.status) == ("ROLLBACK", "IN_PROGRESS")
        broken = False
        done = await settle(p, sid, steps=20)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
    finally:
        await p.close()


async def test_a_failed_step_leaves_a_stack_another_worker_took_alone(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the deadline, a step that raised after this worker's lease ran out (another
    worker took the stack meanwhile) does not fail the other worker's stack."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(
            p, "taken", hot({"a": {"type": "OS::Heat::Value", "properties": {"value": 1}}})
        )
        p.clock.advance(61 * 60)  # past the default 60 minutes
        orchestration = p.worker.orchestration

        async def step(s: Any, stack_id: str) -> None:
            # Worker B leased the stack (committed) before this worker's step raised.
            await s.execute(update(Stack).where(Stack.id == stack_id).values(claimed_by="worker-B"))
            await s.commit()
            raise ConnectionResetError("connection to the database lost")

        monkeypatch.setattr(orchestration, "_step", step)
        await orchestration.run_once()
        done = await stack(p, sid)
        assert (done.status, done.claimed_by) == ("IN_PROGRESS", "worker-B")
    finally:
        await p.close()
