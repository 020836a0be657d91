"""An OS::Heat::ScalingPolicy's own `cooldown`, as Heat honours it: the cooldown is the
group's, and the policy's, when given, replaces the group's for the scaling it makes. So a
policy's long cooldown holds back the group's other policies too, and a policy with
`cooldown: 0` scales again at once though the group's cooldown is long. The stack's own
create or update of the group starts the group's cooldown when it completes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from canopy.orchestration.resources.base import Progress
from canopy.orchestration.resources.simple import Value
from canopy.store.models import StackResource
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, resources, send_signal, server, settle, signals
from .test_autoscaling import members, policy, signal_and_settle
from .test_groups import update


def _template(group_cooldown: int) -> dict[str, object]:
    return hot(
        {
            "asg": {
                "type": "OS::Heat::AutoScalingGroup",
                "properties": {
                    "min_size": 1,
                    "max_size": 10,
                    "cooldown": group_cooldown,
                    "resource": {"type": "OS::Heat::Value", "properties": {"value": "x"}},
                },
            },
            "slow": policy(1, cooldown=300),
            "eager": policy(1, cooldown=0),
            "plain": policy(1),  # no cooldown of its own: the group's
        }
    )


async def test_a_policy_s_long_cooldown_holds_back_every_policy_of_the_group(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "slow", _template(group_cooldown=0))
        assert (await settle(p, sid)).status == "COMPLETE"
        await signal_and_settle(p, sid, "slow")
        assert len(members(await resources(p, sid))) == 2
        p.clock.advance(120)  # inside the policy's 300 s, though the group's is 0
        for name in ("slow", "plain"):
            await signal_and_settle(p, sid, name)
            assert "in cooldown" in (await signals(p, sid))[-1].outcome, name
        assert len(members(await resources(p, sid))) == 2
        p.clock.advance(181)
        await signal_and_settle(p, sid, "plain")
        assert len(members(await resources(p, sid))) == 3
    finally:
        await p.close()


async def test_a_policy_with_cooldown_zero_scales_again_at_once_inside_the_group_s(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "eager", _template(group_cooldown=600))
        assert (await settle(p, sid)).status == "COMPLETE"
        p.clock.advance(600)  # the group's cooldown from its create
        for size in (2, 3):
            await signal_and_settle(p, sid, "eager")
            assert (await signals(p, sid))[-1].outcome.startswith("scaling"), size
            assert len(members(await resources(p, sid))) == size
        # A policy without a cooldown of its own puts the group in its 600 s: every
        # policy waits, the eager one too.
        await signal_and_settle(p, sid, "plain")
        assert len(members(await resources(p, sid))) == 4
        ended = (await _group_row(p, sid)).updated_at
        await _held_back_until(p, sid, ended + timedelta(seconds=600), then=5)
    finally:
        await p.close()


async def _group_row(p: Plane, sid: str) -> StackResource:
    return (await resources(p, sid))["asg"]


async def _held_back_until(p: Plane, sid: str, end: datetime, *, then: int) -> None:
    """The `eager` policy (cooldown 0) is refused a second before the group's cooldown
    `end`, and scales the group to `then` members a second after it."""
    p.clock.advance((end - timedelta(seconds=1) - p.clock.now()).total_seconds())
    await signal_and_settle(p, sid, "eager")
    assert "the group is in cooldown" in (await signals(p, sid))[-1].outcome
    p.clock.advance(2)
    await signal_and_settle(p, sid, "eager")
    assert len(members(await resources(p, sid))) == then


async def test_the_cooldown_runs_from_the_end_of_the_resize_and_refuses_during_it(
    db_url: str, tmp_path: Path
) -> None:
    """As Heat (heat/scaling/cooldown.py): a signal while the group resizes is refused
    "due to scaling activity", and the cooldown starts when the resize has ended, not at
    the signal that asked for it."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        group = {
            "type": "OS::Heat::AutoScalingGroup",
            "properties": {"min_size": 1, "max_size": 10, "cooldown": 30, "resource": server()},
        }
        sid = await create(p, "ends", hot({"asg": group, "up": policy(1)}))
        assert (await settle(p, sid)).status == "COMPLETE"
        p.clock.advance(30)  # the group's cooldown from its create
        asked = p.clock.now()
        await send_signal(p, sid, "up")
        await p.worker.orchestration.run_once()  # the scaling starts; its server boots
        assert (await _group_row(p, sid)).status == "IN_PROGRESS"
        await send_signal(p, sid, "up")  # while the group resizes
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        first, during = (s.outcome for s in await signals(p, sid))
        assert first.startswith("scaling asg from 1 to 2"), first
        assert during == "ignored: asg is scaling (due to scaling activity)"
        assert len(members(await resources(p, sid))) == 2
        ended = (await _group_row(p, sid)).updated_at  # when the resize completed
        assert ended >= asked + timedelta(seconds=2)  # the member's boot took that long
        assert "scaling" not in (await _group_row(p, sid)).data

        # Past 30 s from the signal, inside 30 s from the end of the resize: refused.
        p.clock.advance((asked + timedelta(seconds=31) - p.clock.now()).total_seconds())
        assert p.clock.now() < ended + timedelta(seconds=30)
        await signal_and_settle(p, sid, "up")
        until = (ended + timedelta(seconds=30)).isoformat()
        assert (await signals(p, sid))[-1].outcome == (
            f"ignored: the group is in cooldown until {until}"
        )
        assert len(members(await resources(p, sid))) == 2

        p.clock.advance((ended + timedelta(seconds=30) - p.clock.now()).total_seconds())
        await signal_and_settle(p, sid, "up")
        assert (await signals(p, sid))[-1].outcome.startswith("scaling asg from 2 to 3")
        assert len(members(await resources(p, sid))) == 3
    finally:
        await p.close()


async def test_a_resize_that_failed_starts_no_cooldown(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heat's `_finished_scaling(size_changed=False)`: the group may scale again at once."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        real = Value.create

        async def failing(self: Value, step: Any, res: StackResource) -> Progress:
            if res.name == "asg.1":
                return Progress.failure("the second member fails")
            return await real(self, step, res)

        monkeypatch.setattr(Value, "create", failing)
        sid = await create(p, "fails", _template(group_cooldown=600), disable_rollback=True)
        assert (await settle(p, sid)).status == "COMPLETE"
        created = (await _group_row(p, sid)).updated_at
        p.clock.advance(600)  # the group's cooldown from its create: the failure adds none
        done = await signal_and_settle(p, sid, "plain")
        assert (done.action, done.status) == ("UPDATE", "FAILED"), done.status_reason
        group = await _group_row(p, sid)
        assert "scaling" not in group.data
        assert group.data["cooldown_end"] == (created + timedelta(seconds=600)).isoformat()
        await signal_and_settle(p, sid, "plain")  # not in cooldown: it scales (and repairs)
        assert (await signals(p, sid))[-1].outcome.startswith("scaling asg from 2 to 3")
    finally:
        await p.close()


async def test_the_stack_s_create_and_update_of_the_group_start_its_cooldown(
    db_url: str, tmp_path: Path
) -> None:
    """Heat's AutoScalingGroup `check_create_complete` / `check_update_complete`: the
    group's own cooldown runs from the end of the stack's create, and of an update that
    resized it; a policy with `cooldown: 0` is held back too (the group's end is kept)."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "fresh", _template(group_cooldown=120))
        assert (await settle(p, sid)).status == "COMPLETE"
        created = (await _group_row(p, sid)).updated_at
        for name in ("plain", "eager"):
            await signal_and_settle(p, sid, name)
            until = (created + timedelta(seconds=120)).isoformat()
            assert (await signals(p, sid))[-1].outcome == (
                f"ignored: the group is in cooldown until {until}"
            ), name
        assert len(members(await resources(p, sid))) == 1
        p.clock.advance((created + timedelta(seconds=120) - p.clock.now()).total_seconds())
        await signal_and_settle(p, sid, "eager")
        assert len(members(await resources(p, sid))) == 2

        # A stack update to 4 members: the group's cooldown starts again at its end.
        bigger = _template(group_cooldown=120)
        bigger["resources"]["asg"]["properties"]["desired_capacity"] = 4
        await update(p, sid, bigger)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert len(members(await resources(p, sid))) == 4
        updated = (await _group_row(p, sid)).updated_at
        await _held_back_until(p, sid, updated + timedelta(seconds=120), then=5)
    finally:
        await p.close()
