"""Heat's max_resources_per_stack counted over a root stack's whole tree: at update
(group members and nested stacks included, an autoscaling group's scaled size kept) and
when a ScalingPolicy signal would grow an AutoScalingGroup past it (the group's update
fails, saying why; nothing is added)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.orchestration import nesting_checks
from canopy.orchestration.resources import scaling
from canopy.orchestration.service import StackService
from canopy.orchestration.tree_limit import LIMIT_MESSAGE
from tests.controllers.harness import make_plane

from .helpers import create, hot, resources, send_signal, settle, signals, stack
from .test_autoscaling import policy, signal_and_settle

NONE = {"type": "OS::Heat::None"}
INNER = hot({"a": NONE, "b": NONE})


def asg(desired: int, max_size: int = 1000) -> dict[str, Any]:
    return {
        "type": "OS::Heat::AutoScalingGroup",
        "properties": {
            "min_size": 1,
            "max_size": max_size,
            "desired_capacity": desired,
            "resource": NONE,
        },
    }


async def _update(p: Any, sid: str, body: dict[str, Any], *, patch: bool = False) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        st = await svc.find(s, p.ctx.project_id, sid, lock=True)
        await svc.update(s, p.ctx, st, body, patch=patch)


async def test_a_scale_out_past_the_trees_limit_fails_the_group_and_adds_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scaling, "MAX_TREE_RESOURCES", 9, raising=False)
    p = await make_plane(db_url, tmp_path)
    try:
        t = hot(
            {
                "inner": {"type": "OS::Heat::Stack", "properties": {"template": INNER}},
                "asg": asg(2, max_size=10),
                "up": policy(4),
                "little": policy(1),
            }
        )
        sid = await create(p, "scaled", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        # The tree: inner, a, b (its nested stack), asg, its 2 members, up, little = 8.
        done = await signal_and_settle(p, sid, "up")  # 8 + 4 > 9, though max_size allows
        rows = await resources(p, sid)
        group = rows["asg"]
        assert (group.action, group.status) == ("UPDATE", "FAILED")
        assert group.status_reason == f"RequestLimitExceeded: resources.asg: {LIMIT_MESSAGE}"
        assert len([r for r in rows.values() if r.group_id == group.id]) == 2
        assert (await signals(p, sid))[-1].outcome.startswith("refused")
        assert done.status == "COMPLETE"

        await signal_and_settle(p, sid, "little")  # 8 + 1 = 9: allowed
        rows = await resources(p, sid)
        assert len([r for r in rows.values() if r.group_id == rows["asg"].id]) == 3
        assert (rows["asg"].action, rows["asg"].status) == ("UPDATE", "COMPLETE")
    finally:
        await p.close()


async def test_an_update_counts_the_scaled_size_of_a_group_it_keeps(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path)
    try:
        t = hot({"asg": asg(1), "up": policy(997, kind="exact_capacity")})
        sid = await create(p, "kept", t)
        assert (await settle(p, sid)).status == "COMPLETE"
        await send_signal(p, sid, "up")
        await p.worker.orchestration.run_once()
        done = await settle(p, sid, steps=300)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        # asg + 997 members + up = 999; the template still says desired_capacity 1.
        t2 = hot({"asg": asg(1), "up": policy(997, kind="exact_capacity"), "x": NONE, "y": NONE})
        with pytest.raises(InvalidRequest, match="Maximum resources per stack exceeded"):
            await _update(p, sid, {"template": t2})
        assert (await stack(p, sid)).template == t
        await _update(p, sid, {"template": hot({**t["resources"], "x": NONE})})
    finally:
        await p.close()


async def test_updating_a_nested_stack_counts_the_rest_of_its_roots_tree(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nesting_checks, "MAX_RESOURCES", 8)
    p = await make_plane(db_url, tmp_path)
    try:
        t = hot(
            {
                "inner": {"type": "OS::Heat::Stack", "properties": {"template": INNER}},
                "c": NONE,
                "d": NONE,
            }
        )
        sid = await create(p, "root", t)
        assert (await settle(p, sid)).status == "COMPLETE"
        nested = (await resources(p, sid))["inner"].physical_resource_id
        # The rest of the tree: inner, c, d = 3; the nested stack's 6 make 9 > 8.
        six = hot({k: NONE for k in "abcdef"})
        with pytest.raises(InvalidRequest, match="Maximum resources per stack exceeded"):
            await _update(p, nested, {"template": six})
        assert (await stack(p, nested)).template == INNER
        await _update(p, nested, {"template": hot({k: NONE for k in "abcde"})})  # 8
    finally:
        await p.close()


async def test_a_groups_members_count_with_their_nested_templates_resources(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path)
    try:

        def body(count: int) -> dict[str, Any]:
            group = {
                "type": "OS::Heat::ResourceGroup",
                "properties": {"count": count, "resource_def": {"type": "pair.yaml"}},
            }
            return {"template": hot({"g": group}), "files": {"pair.yaml": json.dumps(INNER)}}

        # The group + 334 members of 3 (the member and its nested a, b) = 1003.
        with pytest.raises(InvalidRequest, match="Maximum resources per stack exceeded"):
            await create(p, "pairs", **body(334))
        await create(p, "pairs", **body(333))  # 1000
    finally:
        await p.close()
