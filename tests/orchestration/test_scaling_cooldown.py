"""An OS::Heat::ScalingPolicy's own `cooldown`, as Heat honours it: the cooldown is the
group's, and the policy's, when given, replaces the group's for the scaling it makes. So a
policy's long cooldown holds back the group's other policies too, and a policy with
`cooldown: 0` scales again at once though the group's cooldown is long."""

from __future__ import annotations

from pathlib import Path

from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, hot, resources, settle, signals
from .test_autoscaling import members, policy, signal_and_settle


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
        for size in (2, 3):
            await signal_and_settle(p, sid, "eager")
            assert (await signals(p, sid))[-1].outcome.startswith("scaling"), size
            assert len(members(await resources(p, sid))) == size
        # A policy without a cooldown of its own puts the group in its 600 s: every
        # policy waits, the eager one too.
        await signal_and_settle(p, sid, "plain")
        assert len(members(await resources(p, sid))) == 4
        p.clock.advance(599)
        await signal_and_settle(p, sid, "eager")
        assert "the group is in cooldown" in (await signals(p, sid))[-1].outcome
        p.clock.advance(2)
        await signal_and_settle(p, sid, "eager")
        assert len(members(await resources(p, sid))) == 5
    finally:
        await p.close()
