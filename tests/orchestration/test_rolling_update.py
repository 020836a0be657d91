"""update_policy: a group's rolling update (members changed in batches, kept in service,
paused on the fake clock) and ResourceGroup's batch_create; refused when malformed."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Progress, Step
from canopy.orchestration.resources.server import NovaServer
from canopy.orchestration.service import StackService
from canopy.orchestration.states import Desired
from canopy.store.models import StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle, stack
from .test_crash import _successor
from .test_groups import update
from .test_rollback import update as update_with


def group(count: int, policy: dict[str, Any] | None, flavor: str = "m1.small") -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "OS::Heat::ResourceGroup",
        "properties": {"count": count, "resource_def": server(flavor=flavor)},
    }
    if policy is not None:
        body["update_policy"] = policy
    return hot({"grp": body})


ROLLING = {"rolling_update": {"max_batch_size": 2, "pause_time": 30, "min_in_service": 4}}


async def _members(p: Plane, sid: str) -> list[StackResource]:
    return [r for r in (await resources(p, sid)).values() if r.group_id is not None]


def _in_service(rows: list[StackResource], flavors: set[str] | None = None) -> set[str]:
    """Indexes with a present, complete member (of one of `flavors`, if given)."""
    return {
        r.name.split(".")[1]
        for r in rows
        if r.desired == Desired.PRESENT
        and r.status == "COMPLETE"
        and (flavors is None or r.properties["flavor"] in flavors)
    }


async def _roll(p: Plane, sid: str, size: int = 6) -> tuple[list[int], list[datetime]]:
    """Step until the stack settles; the members out of service after each step, and when
    each new member row was made."""
    out: list[int] = []
    made: dict[str, datetime] = {}
    for _ in range(400):
        if (await stack(p, sid)).status != "IN_PROGRESS":
            break
        await p.step()
        rows = await _members(p, sid)
        out.append(size - len(_in_service(rows)))
        for r in rows:
            if r.properties["flavor"] == "m1.medium":
                made.setdefault(r.id, r.created_at)
    return out, sorted(made.values())


def _batches(times: list[datetime]) -> list[int]:
    counts = Counter(times)
    return [counts[t] for t in sorted(counts)]


async def test_a_rolling_update_replaces_two_at_a_time_thirty_seconds_apart(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "roll", group(6, ROLLING))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        before = {s.id for s in await live_servers(p)}
        await update(p, sid, group(6, ROLLING, flavor="m1.medium"))
        out, made = await _roll(p, sid)
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        # Never more than 2 being replaced; min_in_service 4 kept throughout.
        assert max(out) == 2, out
        assert _batches(made) == [2, 2, 2]
        starts = sorted(set(made))
        assert all(b - a >= timedelta(seconds=30) for a, b in pairwise(starts))
        rows = await _members(p, sid)
        assert _in_service(rows, {"m1.medium"}) == {str(i) for i in range(6)}
        after = {s.id for s in await live_servers(p)}
        assert len(after) == 6 and not after & before
        # The highest indexes went first, as in Heat.
        first = {r.name for r in rows if r.created_at == starts[0]}
        assert first == {"grp.5", "grp.4"}
        assert "batches" not in (await resources(p, sid))["grp"].data  # the plan is done
    finally:
        await p.close()


async def test_the_pause_holds_the_stack_in_progress_until_the_clock_reaches_it(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "pause", group(6, ROLLING))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, group(6, ROLLING, flavor="m1.medium"))

        async def pausing() -> bool:
            state = (await resources(p, sid))["grp"].data.get("batches") or {}
            return state.get("resume_at") is not None

        await p.run_until(pausing, steps=60)
        grp = (await resources(p, sid))["grp"]
        resume = datetime.fromisoformat(grp.data["batches"]["resume_at"])
        st = await stack(p, sid)
        assert st.status == "IN_PROGRESS" and st.next_attempt_at == resume
        assert grp.wait_until == resume  # the engine comes back at the pause's end
        assert len(_in_service(await _members(p, sid), {"m1.medium"})) == 2
        # Stepping without the clock reaching the end starts nothing.
        for _ in range(3):
            await p.worker.step()
        assert len(await _members(p, sid)) == 6
        assert (await stack(p, sid)).status == "IN_PROGRESS"
        p.clock.advance((resume - p.clock.now()).total_seconds())
        await p.worker.step()
        rows = await _members(p, sid)
        assert len([r for r in rows if r.properties["flavor"] == "m1.medium"]) == 4
        done = await settle(p, sid, steps=200)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
    finally:
        await p.close()


async def test_min_in_service_grows_the_group_for_the_update_and_shrinks_it_back(
    db_url: str, tmp_path: Path
) -> None:
    policy = {"rolling_update": {"max_batch_size": 2, "min_in_service": 5}}
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "keep5", group(6, policy))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, group(6, policy, flavor="m1.medium"))
        out, _ = await _roll(p, sid)
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        # Heat's arithmetic: a 7th member while the others are replaced, 5 kept.
        assert max(out) <= 1, out
        rows = await _members(p, sid)
        assert _in_service(rows, {"m1.medium"}) == {str(i) for i in range(6)}
        assert len(await live_servers(p)) == 6
    finally:
        await p.close()


async def test_batch_create_makes_five_members_in_three_batches(
    db_url: str, tmp_path: Path
) -> None:
    policy = {"batch_create": {"max_batch_size": 2, "pause_time": 10}}
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "batches", group(5, policy))
        done = await settle(p, sid, steps=200)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await _members(p, sid)
        times = [r.created_at for r in rows]
        assert _batches(times) == [2, 2, 1]
        starts = sorted(set(times))
        assert all(b - a >= timedelta(seconds=10) for a, b in pairwise(starts))
        assert sorted(r.name for r in rows if r.created_at == starts[0]) == ["grp.0", "grp.1"]
        assert len(await live_servers(p)) == 5
        # A later update (no rolling_update) changes them all at once.
        await update(p, sid, group(5, policy, flavor="m1.medium"))
        out: list[int] = []
        for _ in range(100):
            if (await stack(p, sid)).status != "IN_PROGRESS":
                break
            await p.step()
            out.append(5 - len(_in_service(await _members(p, sid))))
        assert max(out) == 5
    finally:
        await p.close()


async def test_without_a_policy_every_member_is_replaced_at_once(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "all", group(6, None))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, group(6, None, flavor="m1.medium"))
        out, made = await _roll(p, sid)
        assert (await stack(p, sid)).status == "COMPLETE"
        assert max(out) == 6 and _batches(made) == [6]
    finally:
        await p.close()


async def test_a_worker_killed_mid_batch_resumes_the_same_batch(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "crash", group(6, ROLLING))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, group(6, ROLLING, flavor="m1.medium"))

        async def second_batch() -> bool:
            state = (await resources(p, sid))["grp"].data.get("batches") or {}
            return state.get("resume_at") is not None

        await p.run_until(second_batch, steps=60)
        resume = datetime.fromisoformat(
            (await resources(p, sid))["grp"].data["batches"]["resume_at"]
        )
        p.clock.advance((resume - p.clock.now()).total_seconds())
        real = NovaServer.create_many

        async def dies(self: NovaServer, step: Step, rows: Any, *a: Any) -> list[Progress]:
            await real(self, step, rows, *a)
            raise RuntimeError("kill -9")  # the worker dies with the batch's servers sent

        monkeypatch.setattr(NovaServer, "create_many", dies)
        assert await p.worker.orchestration.run_once() == 1
        monkeypatch.setattr(NovaServer, "create_many", real)
        state = (await resources(p, sid))["grp"].data["batches"]
        assert state["at"] == 0 and state["resume_at"] is not None  # the step rolled back
        nxt = _successor(p)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        out, _ = await _roll(nxt, sid)
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert max(out) <= 2, out
        rows = await _members(p, sid)
        assert _in_service(rows, {"m1.medium"}) == {str(i) for i in range(6)}
        assert len(await live_servers(p)) == 6  # nothing made twice
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("rtype", "policy", "message"),
    [
        (
            "OS::Heat::ResourceGroup",
            {"rolling_update": {"max_batch": 2}},
            "resources.grp.update_policy.rolling_update: Unknown Property max_batch",
        ),
        (
            "OS::Heat::ResourceGroup",
            {"rolling_update": {"max_batch_size": 0}},
            "rolling_update.max_batch_size: 0 is out of range (min: 1",
        ),
        (
            "OS::Heat::ResourceGroup",
            {"batch_create": {"pause_time": "soon"}},
            'batch_create.pause_time: Value "soon" is not a valid number',
        ),
        (
            "OS::Heat::ResourceGroup",
            {"rolling": {}},
            "resources.grp.update_policy: Unknown Property rolling",
        ),
        (
            "OS::Nova::Server",
            {"rolling_update": {"max_batch_size": 1}},
            "resources.grp.update_policy: Unknown Property rolling_update",
        ),
    ],
)
async def test_a_malformed_update_policy_is_refused_before_anything_exists(
    db_url: str, tmp_path: Path, rtype: str, policy: dict[str, Any], message: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        body = group(2, policy)
        if rtype == "OS::Nova::Server":
            body = hot({"grp": {**server(), "update_policy": policy}})
        with pytest.raises(InvalidRequest) as e:
            await create(p, "bad", body)
        assert "Property error: " in str(e.value) and message in str(e.value), str(e.value)
        assert await live_servers(p) == []
        # An update to it is refused the same way, and the stack is left as it was.
        sid = await create(p, "good", group(2, None))
        assert (await settle(p, sid)).status == "COMPLETE"
        with pytest.raises(InvalidRequest, match=r"Unknown Property|out of range|not a valid"):
            await update(p, sid, body)
        assert (await stack(p, sid)).action == "CREATE"
    finally:
        await p.close()


async def _refused_for_its_pauses(p: Plane, sid: str) -> None:
    """The update settles FAILED as Heat refuses it, with no member touched."""
    done = await settle(p, sid)
    assert (done.action, done.status) == ("UPDATE", "FAILED")
    assert "The current update policy will result in stack update timeout." in (done.status_reason)
    rows = await _members(p, sid)
    assert _in_service(rows, {"m1.small"}) == {str(i) for i in range(6)}  # none touched


async def test_pauses_that_outlast_the_stack_timeout_fail_the_update_as_in_heat(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "slow", group(6, ROLLING))
        assert (await settle(p, sid)).status == "COMPLETE"
        async with p.db.session() as s:
            svc = StackService(p.settings, p.clock)
            st = await svc.find(s, p.ctx.project_id, sid, lock=True)
            body = {"template": group(6, ROLLING, flavor="m1.medium"), "timeout_mins": 1}
            await svc.update(s, p.ctx, st, body, patch=False)
        # Three batches, two pauses of 30 s: a minute of pauses in a one-minute timeout.
        await _refused_for_its_pauses(p, sid)
    finally:
        await p.close()


async def test_pauses_that_outlast_the_default_action_limit_fail_the_update_as_in_heat(
    db_url: str, tmp_path: Path
) -> None:
    # A stack without timeout_mins is limited by [orchestration]
    # stack_action_timeout_minutes (Heat's stack.timeout_secs() falls back to
    # stack_action_timeout): pauses that outlast it are refused up front, not left to
    # time the update out half way through its batches.
    toml = CLOUDS + "\n[orchestration]\nstack_action_timeout_minutes = 1\n"
    p = await make_plane(db_url, tmp_path, toml=toml)
    try:
        sid = await create(p, "slow", group(6, ROLLING))
        assert (await settle(p, sid)).status == "COMPLETE"
        assert (await stack(p, sid)).timeout_mins is None
        await update(p, sid, group(6, ROLLING, flavor="m1.medium"))
        # Three batches, two pauses of 30 s: a minute of pauses in a one-minute limit.
        await _refused_for_its_pauses(p, sid)
    finally:
        await p.close()


async def test_a_policy_from_a_parameter_is_read_and_a_change_of_it_alone_is_kept(
    db_url: str, tmp_path: Path
) -> None:
    def template(batch: int, flavor: str) -> dict[str, Any]:
        t = group(4, {"rolling_update": {"max_batch_size": {"get_param": "batch"}}}, flavor)
        t["parameters"] = {"batch": {"type": "number", "default": batch}}
        return t

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "param", template(1, "m1.small"))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, template(2, "m1.small"))  # only the policy changes
        assert (await settle(p, sid)).status == "COMPLETE"
        grp = (await resources(p, sid))["grp"]
        assert grp.data["update_policy"]["rolling_update"]["max_batch_size"] == 2
        assert len(await live_servers(p)) == 4
        await update(p, sid, template(2, "m1.medium"))
        out, made = await _roll(p, sid, size=4)
        assert (await stack(p, sid)).status == "COMPLETE"
        assert _batches(made) == [2, 2] and max(out) == 2, (out, made)
    finally:
        await p.close()


async def test_a_batch_that_fails_stops_the_update_and_the_rollback_leaves_the_rest_alone(
    db_url: str, tmp_path: Path
) -> None:
    def template(value: str, fail: bool) -> dict[str, Any]:
        member = {"type": "OS::Heat::TestResource", "properties": {"value": value, "fail": fail}}
        policy = {"rolling_update": {"max_batch_size": 1, "pause_time": 10}}
        return hot(
            {
                "grp": {
                    "type": "OS::Heat::ResourceGroup",
                    "properties": {"count": 4, "resource_def": member},
                    "update_policy": policy,
                }
            }
        )

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "undo", template("a", False))
        assert (await settle(p, sid)).status == "COMPLETE"
        before = {r.name: r.id for r in await _members(p, sid)}
        await update_with(p, sid, template("b", True), disable_rollback=False)
        done = await settle(p, sid, steps=200)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
        rows = {r.name: r for r in await _members(p, sid)}
        assert {n: r.properties["value"] for n, r in rows.items()} == {
            f"grp.{i}": "a" for i in range(4)
        }
        # Only the first batch's member (the highest index) was touched.
        assert {n for n, r in rows.items() if r.id == before[n]} == {"grp.0", "grp.1", "grp.2"}
        assert "batches" not in (await resources(p, sid))["grp"].data
    finally:
        await p.close()
