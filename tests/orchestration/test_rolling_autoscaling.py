"""Rolling updates of autoscaling groups: OS::Heat::AutoScalingGroup's `rolling_updates`
property (one member at a time when not given, as in Heat) and the AWS group's
`UpdatePolicy: {AutoScalingRollingUpdate: ...}` (PauseTime an ISO 8601 duration)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.states import Desired
from canopy.store.models import StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import (
    CLOUDS,
    create,
    hot,
    live_servers,
    resources,
    send_signal,
    server,
    settle,
    stack,
)
from .test_autoscaling import policy
from .test_aws_autoscaling import cfn, config
from .test_aws_autoscaling import group as aws_group
from .test_groups import update
from .test_rollback import update as update_with


def os_group(flavor: str, rolling: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "min_size": 1,
        "max_size": 10,
        "desired_capacity": 4,
        "resource": server(flavor=flavor),
    }
    if rolling is not None:
        props["rolling_updates"] = rolling
    return hot({"grp": {"type": "OS::Heat::AutoScalingGroup", "properties": props, **extra}})


def aws(flavor: str, pause: str = "PT20S") -> dict[str, Any]:
    policy = {"MaxBatchSize": "2", "MinInstancesInService": "2", "PauseTime": pause}
    return cfn(
        {
            "LaunchConfig": config(InstanceType=flavor),
            "grp": {
                **aws_group(MinSize="4"),
                "UpdatePolicy": {"AutoScalingRollingUpdate": policy},
            },
        }
    )


async def _roll(p: Plane, sid: str, key: str, new: str) -> tuple[list[int], list[datetime]]:
    """Step until the stack settles: after each step, the members not in service; and when
    each member with `key` = `new` was made."""
    out: list[int] = []
    made: dict[str, datetime] = {}
    for _ in range(400):
        if (await stack(p, sid)).status != "IN_PROGRESS":
            break
        await p.step()
        rows = [r for r in (await resources(p, sid)).values() if r.group_id is not None]
        out.append(4 - len(_serving(rows)))
        for r in rows:
            if r.properties.get(key) == new:
                made.setdefault(r.id, r.created_at)
    return out, sorted(made.values())


def _serving(rows: list[StackResource]) -> list[StackResource]:
    return [r for r in rows if r.desired == Desired.PRESENT and r.status == "COMPLETE"]


def _batches(times: list[datetime]) -> list[int]:
    counts = Counter(times)
    return [counts[t] for t in sorted(counts)]


async def test_rolling_updates_replaces_an_autoscaling_group_two_at_a_time(
    db_url: str, tmp_path: Path
) -> None:
    rolling = {"max_batch_size": 2, "pause_time": 20}
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "asg", os_group("m1.small", rolling))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, os_group("m1.medium", rolling))
        out, made = await _roll(p, sid, "flavor", "m1.medium")
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert max(out) == 2 and _batches(made) == [2, 2], (out, made)
        assert all(b - a >= timedelta(seconds=20) for a, b in pairwise(sorted(set(made))))
        grp = (await resources(p, sid))["grp"]
        assert len(grp.data["members"]) == 4 and "batches" not in grp.data
        assert len(await live_servers(p)) == 4
    finally:
        await p.close()


async def test_without_rolling_updates_heat_replaces_one_member_at_a_time(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "asg1", os_group("m1.small"))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, os_group("m1.medium"))
        out, made = await _roll(p, sid, "flavor", "m1.medium")
        assert (await stack(p, sid)).status == "COMPLETE"
        assert max(out) == 1 and _batches(made) == [1, 1, 1, 1], (out, made)
    finally:
        await p.close()


async def test_the_aws_group_rolls_by_its_update_policy(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "awsroll", aws("m1.small"))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        await update(p, sid, aws("m1.medium"))  # a new LaunchConfiguration
        out, made = await _roll(p, sid, "InstanceType", "m1.medium")
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert max(out) == 2 and _batches(made) == [2, 2], (out, made)
        assert all(b - a >= timedelta(seconds=20) for a, b in pairwise(sorted(set(made))))
        assert len(await live_servers(p)) == 4
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            os_group("m1.small", update_policy={"rolling_update": {"max_batch_size": 1}}),
            "resources.grp.update_policy: Unknown Property rolling_update",
        ),
        (
            os_group("m1.small", {"max_batch_size": 0}),
            "rolling_updates.max_batch_size: 0 is out of range (min: 1",
        ),
        (os_group("m1.small", {"batch": 2}), "rolling_updates: Unknown Property batch"),
        (aws("m1.small", "20 seconds"), "Only ISO 8601 duration format of the form PT#H#M#S"),
        (aws("m1.small", "PT2H"), "PauseTime: Maximum PauseTime is 1 hour."),
    ],
)
async def test_a_malformed_group_rolling_policy_is_refused(
    db_url: str, tmp_path: Path, template: dict[str, Any], message: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        with pytest.raises(InvalidRequest) as e:
            await create(p, "bad", template)
        assert message in str(e.value), str(e.value)
        assert str(e.value).startswith("Property error: "), str(e.value)
    finally:
        await p.close()


def capacity(grp: StackResource) -> int:
    """The group's size as a scaling computes from it."""
    # Imported here: the module is in an import cycle that the registry's import resolves.
    from canopy.orchestration.resources.autoscaling import capacity as size

    return size(grp)


def _tests(value: str, fail: bool) -> dict[str, Any]:
    """4 OS::Heat::TestResource, two at a time keeping 4 in service, and a +1 policy."""
    member = {"type": "OS::Heat::TestResource", "properties": {"value": value, "fail": fail}}
    props = {
        "min_size": 1,
        "max_size": 10,
        "desired_capacity": 4,
        "resource": member,
        "rolling_updates": {"max_batch_size": 2, "min_in_service": 4, "pause_time": 10},
    }
    return hot(
        {"asg": {"type": "OS::Heat::AutoScalingGroup", "properties": props}, "up": policy(1)}
    )


async def _seen(p: Plane, sid: str) -> dict[str, tuple[str, str, str]]:
    rows = (await resources(p, sid)).values()
    return {
        r.name: (r.id, r.action, r.status)
        for r in rows
        if r.group_id is not None and r.desired == Desired.PRESENT
    }


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {n for n, v in after.items() if before.get(n) != v}


async def _stepped(p: Plane, sid: str) -> list[set[str]]:
    """Step until the stack settles: the members made, updated or failed in each step."""
    out: list[set[str]] = []
    before = await _seen(p, sid)
    for _ in range(200):
        if (await stack(p, sid)).status != "IN_PROGRESS":
            break
        await p.step()
        after = await _seen(p, sid)
        out.append(_changed(before, after))
        before = after
    return out


async def test_after_a_failed_batch_the_size_stays_and_scaling_or_repair_still_rolls(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "asgfail", _tests("a", False), disable_rollback=True)
        assert (await settle(p, sid)).status == "COMPLETE"
        await update_with(p, sid, _tests("b", True), disable_rollback=True)
        done = await settle(p, sid, steps=200)
        assert (done.action, done.status) == ("UPDATE", "FAILED"), done.status_reason
        grp = (await resources(p, sid))["asg"]
        # The batch grew the group to 6 for min_in_service and failed: its size is still 4.
        assert len(grp.data["members"]) == 6 and capacity(grp) == 4
        # A scaling signal computes from 4, and replaces the members left behind in
        # batches of 2, not all at once.
        before = await _seen(p, sid)
        await send_signal(p, sid, "up")
        await p.worker.orchestration.run_once()  # the scaling and its first batch
        assert capacity((await resources(p, sid))["asg"]) == 5
        changed = [_changed(before, await _seen(p, sid)), *await _stepped(p, sid)]
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "FAILED"), done.status_reason
        assert max(len(c) for c in changed) <= 2, changed
        # The repair rolls too, and ends at 5 members of the new definition.
        await update_with(p, sid, _tests("b", False), disable_rollback=True)
        changed = await _stepped(p, sid)
        done = await stack(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert max(len(c) for c in changed) <= 2, changed
        rows = [r for r in (await resources(p, sid)).values() if r.group_id is not None]
        assert sorted((r.properties["value"], r.status) for r in rows) == [("b", "COMPLETE")] * 5
        grp = (await resources(p, sid))["asg"]
        assert len(grp.data["members"]) == 5 and capacity(grp) == 5
        assert "batches" not in grp.data
    finally:
        await p.close()
