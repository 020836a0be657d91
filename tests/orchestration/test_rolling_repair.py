"""A rolling update after a failure: a failed member is replaced in its own batch, the
same update again (the repair of a failed group) still goes in batches, and a policy value
known only at run time fails the group, never the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, settle, stack
from .test_rollback import update as update_with
from .test_rolling_update import _members, group


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (10**400, "max_batch_size: a larger number is out of range (min: 1, max: 1000000000)"),
        ("9" * 5000, 'rolling_update.max_batch_size: Value "999'),
    ],
)
async def test_a_policy_value_known_only_at_run_time_fails_the_group_not_the_engine(
    db_url: str, tmp_path: Path, value: Any, message: str
) -> None:
    t = group(2, {"rolling_update": {"max_batch_size": {"get_attr": ["big", "value"]}}})
    t["resources"]["big"] = {"type": "OS::Heat::Value", "properties": {"value": value}}
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "late", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert message in done.status_reason, done.status_reason
        assert await live_servers(p) == []
    finally:
        await p.close()


def _tests(value: str, fail: bool, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """A group of 4 OS::Heat::TestResource, one at a time 10 seconds apart."""
    member = {"type": "OS::Heat::TestResource", "properties": {"value": value, "fail": fail}}
    policy = policy or {"rolling_update": {"max_batch_size": 1, "pause_time": 10}}
    props = {"count": 4, "resource_def": member}
    return hot(
        {"grp": {"type": "OS::Heat::ResourceGroup", "properties": props, "update_policy": policy}}
    )


async def _one_by_one(p: Plane, sid: str) -> list[set[str]]:
    """Step until the stack settles: the member indexes changed (made, updated, failed,
    deleted) in each step."""
    out: list[set[str]] = []

    async def seen() -> dict[str, tuple[str, str, str, str]]:
        return {r.name: (r.id, r.action, r.status, r.desired) for r in await _members(p, sid)}

    before = await seen()
    for _ in range(200):
        if (await stack(p, sid)).status != "IN_PROGRESS":
            break
        await p.step()
        after = await seen()
        out.append({n for n in before.keys() | after.keys() if before.get(n) != after.get(n)})
        before = after
    return out


async def test_a_failed_member_held_back_does_not_fail_the_batch_it_is_left_out_of(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "held", _tests("a", True), disable_rollback=True)
        assert (await settle(p, sid)).status == "FAILED"
        assert {r.status for r in await _members(p, sid)} == {"FAILED"}
        await update_with(p, sid, _tests("b", False), disable_rollback=True)
        changed = await _one_by_one(p, sid)
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        rows = await _members(p, sid)
        assert {(r.name, r.properties["value"], r.status) for r in rows} == {
            (f"grp.{i}", "b", "COMPLETE") for i in range(4)
        }
        # Each failed member was replaced in its own batch.
        assert max(len(c) for c in changed) == 1, changed
    finally:
        await p.close()


async def test_the_same_update_again_after_a_failed_batch_still_goes_one_by_one(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "again", _tests("a", False), disable_rollback=True)
        assert (await settle(p, sid)).status == "COMPLETE"
        await update_with(p, sid, _tests("b", True), disable_rollback=True)
        done = await settle(p, sid, steps=200)
        assert (done.action, done.status) == ("UPDATE", "FAILED"), done.status_reason
        kept = {r.name: r.id for r in await _members(p, sid) if r.name != "grp.3"}
        # The repair (the same template again) fails in the same first batch, the other
        # members untouched, rather than replacing all of them at once.
        await update_with(p, sid, _tests("b", True), disable_rollback=True)
        changed = await _one_by_one(p, sid)
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "FAILED"), done.status_reason
        assert max(len(c) for c in changed) == 1 and set().union(*changed) == {"grp.3"}
        rows = {r.name: r for r in await _members(p, sid)}
        assert {n: rows[n].id for n in kept} == kept
        assert {rows[n].properties["value"] for n in kept} == {"a"}
        # And a fixed definition goes on one member at a time to the end.
        await update_with(p, sid, _tests("b", False), disable_rollback=True)
        changed = await _one_by_one(p, sid)
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert max(len(c) for c in changed) == 1, changed
        assert {r.properties["value"] for r in await _members(p, sid)} == {"b"}
    finally:
        await p.close()
