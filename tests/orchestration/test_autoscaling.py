"""OS::Heat::AutoScalingGroup and OS::Heat::ScalingPolicy: scaling out by signal bursts to
the public cloud, scaling in removes the public (priced) members first, then the newest;
cooldowns; Heat's capacity arithmetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.outputs import bound_of, outputs
from canopy.orchestration.resources import scaling
from canopy.orchestration.resources.scaling import new_capacity
from canopy.store.models import Cloud, Stack, StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import (
    CLOUDS,
    create,
    events,
    hot,
    live_servers,
    resources,
    send_signal,
    server,
    settle,
    signals,
)
from .test_groups import update


def policy(adjustment: float, kind: str = "change_in_capacity", **extra: Any) -> dict[str, Any]:
    return {
        "type": "OS::Heat::ScalingPolicy",
        "properties": {
            "auto_scaling_group_id": {"get_resource": "asg"},
            "adjustment_type": kind,
            "scaling_adjustment": adjustment,
            **extra,
        },
    }


TEMPLATE = hot(
    {
        "asg": {
            "type": "OS::Heat::AutoScalingGroup",
            "properties": {
                "min_size": 1,
                "max_size": 20,
                "desired_capacity": 4,
                "cooldown": 60,
                "resource": server(),
            },
        },
        "scale_out": policy(4),
        "scale_in": policy(-6),
        "trim": policy(-2),
    },
    outputs={
        "size": {"value": {"get_attr": ["asg", "current_size"]}},
        "clouds": {"value": {"get_attr": ["asg", "outputs_list", "canopy"]}},
        "alarm": {"value": {"get_attr": ["scale_out", "alarm_url"]}},
    },
)


def members(rows: dict[str, StackResource]) -> dict[str, StackResource]:
    return {n: r for n, r in rows.items() if r.group_id is not None}


async def clouds(p: Plane, sid: str) -> dict[str, str]:
    return {n: m.attributes["canopy"]["cloud"] for n, m in members(await resources(p, sid)).items()}


async def signal_and_settle(p: Plane, sid: str, resource: str) -> Stack:
    await send_signal(p, sid, resource)
    await p.worker.orchestration.run_once()  # the engine acts on the signal
    return await settle(p, sid)


async def test_scale_out_bursts_then_scale_in_removes_public_first_then_newest(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "auto", TEMPLATE)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        assert sorted((await clouds(p, sid)).values()) == ["private"] * 4
        # The group's 60 s cooldown runs from the end of its create (Heat's rule).
        await signal_and_settle(p, sid, "scale_out")
        assert "in cooldown" in (await signals(p, sid))[-1].outcome
        p.clock.advance(61)

        # Out by 4: private takes 2 more (6 of 8 is its 80% threshold), 2 burst.
        done = await signal_and_settle(p, sid, "scale_out")
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert sorted((await clouds(p, sid)).values()) == ["private"] * 6 + ["public"] * 2

        # Inside the group's 60 s cooldown: recorded, ignored.
        done = await signal_and_settle(p, sid, "scale_out")
        assert done.status == "COMPLETE"
        assert len(await clouds(p, sid)) == 8
        assert "in cooldown" in (await signals(p, sid))[-1].outcome

        p.clock.advance(61)
        done = await signal_and_settle(p, sid, "scale_out")
        placed = await clouds(p, sid)
        assert sorted(placed.values()) == ["private"] * 6 + ["public"] * 6
        rows = await resources(p, sid)
        outs = {
            o["output_key"]: o["output_value"]
            for o in outputs(bound_of(done, "RegionOne"), list(rows.values()))
        }
        assert outs["size"] == 12
        assert sorted(c["cloud"] for c in outs["clouds"]) == sorted(placed.values())
        assert outs["alarm"].startswith("http") and "signal_token=" in outs["alarm"]

        # In by 6: every public member goes, the private ones stay.
        p.clock.advance(61)
        done = await signal_and_settle(p, sid, "scale_in")
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        after = await clouds(p, sid)
        assert sorted(after) == sorted(n for n, c in placed.items() if c == "private")
        assert len(await live_servers(p)) == 6
        assert {s.cloud for s in await live_servers(p)} == {"private"}

        # In by 2 more: the newest private members go.
        p.clock.advance(61)
        newest = sorted(after, key=lambda n: int(n.split(".")[1]))[-2:]
        await signal_and_settle(p, sid, "trim")
        assert sorted(await clouds(p, sid)) == sorted(set(after) - set(newest))

        seen = [(e.resource_name, e.action, e.status) for e in await events(p, sid)]
        assert ("scale_out", "SIGNAL", "COMPLETE") in seen
        assert ("auto", "UPDATE", "COMPLETE") in seen
    finally:
        await p.close()


async def test_capacity_is_clamped_and_no_change_sets_no_cooldown(
    db_url: str, tmp_path: Path
) -> None:
    t = hot(
        {
            "asg": {
                "type": "OS::Heat::AutoScalingGroup",
                "properties": {
                    "min_size": 1,
                    "max_size": 3,
                    "cooldown": 600,
                    "resource": {"type": "OS::Heat::Value", "properties": {"value": "x"}},
                },
            },
            "big": policy(10, "exact_capacity"),
            "down": policy(-100, "percent_change_in_capacity"),
        }
    )
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "clamped", t)
        assert (await settle(p, sid)).status == "COMPLETE"
        assert len(members(await resources(p, sid))) == 1  # min_size
        await signal_and_settle(p, sid, "down")  # at min_size: no change (before cooldown)
        assert "no change" in (await signals(p, sid))[-1].outcome
        p.clock.advance(600)  # the cooldown of the group's create
        await signal_and_settle(p, sid, "down")
        assert "no change" in (await signals(p, sid))[-1].outcome
        done = await signal_and_settle(p, sid, "big")  # no cooldown was started
        assert done.status == "COMPLETE", done.status_reason
        assert len(members(await resources(p, sid))) == 3  # max_size
    finally:
        await p.close()


def test_heats_capacity_arithmetic() -> None:
    assert new_capacity(4, 2, "change_in_capacity", 0) == 6
    assert new_capacity(4, -5, "change_in_capacity", 0) == -1  # clamped later
    assert new_capacity(4, 7, "exact_capacity", 0) == 7
    assert new_capacity(10, 25, "percent_change_in_capacity", 0) == 12  # floor of 2.5
    assert new_capacity(3, 10, "percent_change_in_capacity", 0) == 4  # |0.3| < 1: ceil
    assert new_capacity(3, -10, "percent_change_in_capacity", 0) == 2
    assert new_capacity(10, 10, "percent_change_in_capacity", 3) == 13  # min step
    assert new_capacity(10, -10, "percent_change_in_capacity", 3) == 7
    assert new_capacity(0, 50, "percent_change_in_capacity", 2) == 2  # grows, from empty


async def test_a_template_update_resizes_to_a_new_desired_capacity_and_keeps_it_otherwise(
    db_url: str, tmp_path: Path
) -> None:
    def template(desired: int, value: str = "x") -> dict[str, Any]:
        return hot(
            {
                "asg": {
                    "type": "OS::Heat::AutoScalingGroup",
                    "properties": {
                        "min_size": 1,
                        "max_size": 10,
                        "desired_capacity": desired,
                        "resource": {"type": "OS::Heat::Value", "properties": {"value": value}},
                    },
                },
                "up": policy(3),
            }
        )

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "resized", template(2))
        assert (await settle(p, sid)).status == "COMPLETE"
        await signal_and_settle(p, sid, "up")
        assert len(members(await resources(p, sid))) == 5
        # Another property changes, desired_capacity does not: the scaled size stays, and
        # every member is updated in place (a Value's value is updatable).
        await update(p, sid, template(2, "y"))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        now = members(await resources(p, sid))
        assert len(now) == 5
        assert {m.attributes["value"] for m in now.values()} == {"y"}
        # A new desired_capacity is taken.
        await update(p, sid, template(3, "y"))
        assert (await settle(p, sid)).status == "COMPLETE"
        assert sorted(members(await resources(p, sid))) == ["asg.0", "asg.1", "asg.2"]
    finally:
        await p.close()


async def test_an_adjustment_past_any_group_is_refused_at_create(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        for bad in (float("inf"), 1e300, -2_000_000):
            t = hot({**TEMPLATE["resources"], "scale_out": policy(bad)})
            with pytest.raises(InvalidRequest) as e:
                await create(p, "huge", t)
            assert "scaling_adjustment must be a number between" in str(e.value)
    finally:
        await p.close()


async def test_a_signal_whose_handling_fails_is_handled_once_and_changes_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "asg", TEMPLATE)
        assert (await settle(p, sid)).status == "COMPLETE"
        before = sorted(members(await resources(p, sid)))

        async def broken(step: Any, res: Any, adj: Any) -> Any:
            res.attributes = {**(res.attributes or {}), "half": "done"}  # then it fails
            raise OverflowError("cannot convert float infinity to integer")

        monkeypatch.setattr(scaling, "scale", broken)
        done = await signal_and_settle(p, sid, "scale_out")
        [sig] = await signals(p, sid)
        assert sig.handled_at is not None
        assert sig.outcome.startswith("failed: OverflowError")
        assert done.status == "COMPLETE"
        rows = await resources(p, sid)
        assert sorted(members(rows)) == before
        assert "half" not in (rows["scale_out"].attributes or {})  # rolled back
        assert await p.worker.orchestration.run_once() == 0  # not tried again
    finally:
        await p.close()


async def test_a_cooldown_past_any_date_is_refused_at_create(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        group = {**TEMPLATE["resources"]["asg"]}
        group["properties"] = {**group["properties"], "cooldown": 10**15}
        for t in (
            hot({**TEMPLATE["resources"], "asg": group}),
            hot({**TEMPLATE["resources"], "trim": policy(-2, cooldown=10**15)}),
        ):
            with pytest.raises(InvalidRequest) as e:
                await create(p, "late", t)
            assert "cooldown must be between 0 and 1000000000 seconds" in str(e.value)
    finally:
        await p.close()


async def test_a_cooldown_known_only_at_an_update_is_checked_there(
    db_url: str, tmp_path: Path
) -> None:
    """A group's cooldown from another resource is known only when the group is stepped:
    an update that brings one past any date fails the group with the bounds' message."""

    def template(seconds: int) -> dict[str, Any]:
        group = {**TEMPLATE["resources"]["asg"]}
        props = {**group["properties"], "cooldown": {"get_attr": ["wait", "value"]}}
        group["properties"] = {**props, "desired_capacity": 1}
        wait = {"type": "OS::Heat::Value", "properties": {"value": seconds, "type": "number"}}
        return hot({"wait": wait, "asg": group})

    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "later", template(60))
        assert (await settle(p, sid)).status == "COMPLETE"
        await update(p, sid, template(10**15))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "FAILED")
        assert "cooldown must be between 0 and 1000000000 seconds" in done.status_reason
    finally:
        await p.close()


TWO_PRICES = """
[scheduler]
burst_threshold = 0.8

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 65536
boot_seconds = 2

[[clouds]]
name = "cheap"
tier = 1
[clouds.sim]
hosts = 1
host_vcpus = 3
host_ram_mb = 65536
boot_seconds = 2
price_per_vcpu_hour = 0.05

[[clouds]]
name = "dear"
tier = 1
[clouds.sim]
hosts = 10
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 2
price_per_vcpu_hour = 0.20
"""


async def _enable(p: Plane, cloud: str, enabled: bool) -> None:
    async with p.db.session() as s:
        row = await s.get(Cloud, cloud)
        assert row is not None
        row.enabled = enabled


async def test_scale_in_within_a_tier_removes_the_dearer_cloud_s_members_first(
    db_url: str, tmp_path: Path
) -> None:
    """Two public clouds of one tier at different prices: scaling in takes the members on
    the dearer one first (their claims' price per hour), though they are not the newest."""
    template = hot(
        {
            "asg": {
                "type": "OS::Heat::AutoScalingGroup",
                "properties": {
                    "min_size": 1,
                    "max_size": 30,
                    "desired_capacity": 6,
                    "cooldown": 0,
                    "resource": server(),
                },
            },
            "scale_out": policy(6),
            "grow": policy(2),
            "scale_in": policy(-1),
        }
    )
    p = await make_plane(db_url, tmp_path, toml=TWO_PRICES)
    try:
        await _enable(p, "cheap", False)  # the first burst can only go to the dear cloud
        sid = await create(p, "priced", template)
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        done = await signal_and_settle(p, sid, "scale_out")
        assert done.status == "COMPLETE", done.status_reason
        await _enable(p, "cheap", True)  # the next one goes to the cheap cloud, with room
        done = await signal_and_settle(p, sid, "grow")
        assert done.status == "COMPLETE", done.status_reason
        placed = await clouds(p, sid)
        counts = {c: list(placed.values()).count(c) for c in set(placed.values())}
        assert counts.get("cheap", 0) >= 1 and counts.get("dear", 0) >= 1, counts
        # So the dear members are older than the cheap ones: newest-first alone would not
        # take them first.
        age = {n: int(n.split(".")[1]) for n in placed}
        assert max(age[n] for n in placed if placed[n] == "dear") < min(
            age[n] for n in placed if placed[n] == "cheap"
        )

        # One member at a time: every dear member goes before any cheap one, and a cheap
        # one before any private one, whatever their age.
        for _ in range(counts["dear"]):
            done = await signal_and_settle(p, sid, "scale_in")
            assert done.status == "COMPLETE", done.status_reason
        left = await clouds(p, sid)
        assert (
            sorted(left.values()) == ["cheap"] * counts["cheap"] + ["private"] * counts["private"]
        )
        done = await signal_and_settle(p, sid, "scale_in")
        after = await clouds(p, sid)
        assert (
            sorted(after.values())
            == ["cheap"] * (counts["cheap"] - 1) + ["private"] * counts["private"]
        )
        assert {s.cloud for s in await live_servers(p)} == {"cheap", "private"}
    finally:
        await p.close()
