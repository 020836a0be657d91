"""Scaling in by cost, not age: an OS::Heat::AutoScalingGroup whose public members are
OLDER than its private ones still removes the public ones first, whether its members are
servers or nested stacks (a template file, an OS::Heat::Stack, a nested stack holding a
ResourceGroup of servers, a ResourceGroup of template files): a member costs what the
servers inside it cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle
from .test_autoscaling import _enable, policy, signal_and_settle

NODE = hot({"vm": server()})
PAIR = hot(
    {
        "pair": {
            "type": "OS::Heat::ResourceGroup",
            "properties": {"count": 2, "resource_def": server()},
        }
    }
)

MEMBERS: dict[str, tuple[dict[str, Any], dict[str, str], int]] = {
    # name: (the group's `resource`, the stack's files, servers per member)
    "server": (server(), {}, 1),
    "template_file": ({"type": "node.yaml"}, {"node.yaml": yaml.safe_dump(NODE)}, 1),
    "os_heat_stack": (
        {"type": "OS::Heat::Stack", "properties": {"template": yaml.safe_dump(NODE)}},
        {},
        1,
    ),
    "stack_of_a_resource_group": ({"type": "pair.yaml"}, {"pair.yaml": yaml.safe_dump(PAIR)}, 2),
    "resource_group_of_template_files": (
        {
            "type": "OS::Heat::ResourceGroup",
            "properties": {"count": 2, "resource_def": {"type": "node.yaml"}},
        },
        {"node.yaml": yaml.safe_dump(NODE)},
        2,
    ),
}


@pytest.mark.parametrize("kind", sorted(MEMBERS))
async def test_scale_in_removes_older_public_members_before_newer_private_ones(
    db_url: str, tmp_path: Path, kind: str
) -> None:
    resource, files, per_member = MEMBERS[kind]
    template = hot(
        {
            "asg": {
                "type": "OS::Heat::AutoScalingGroup",
                "properties": {
                    "min_size": 1,
                    "max_size": 10,
                    "desired_capacity": 2,
                    "cooldown": 0,
                    "resource": resource,
                },
            },
            "grow": policy(2),
            "shrink": policy(-2),
        }
    )
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        await _enable(p, "private", False)  # the first members can only go public
        sid = await create(p, "costly", template, files=files)
        done = await settle(p, sid, steps=200)
        assert done.status == "COMPLETE", done.status_reason
        assert {s.cloud for s in await live_servers(p)} == {"public"}
        await _enable(p, "private", True)  # the newer members go private
        done = await signal_and_settle(p, sid, "grow")
        assert done.status == "COMPLETE", done.status_reason
        clouds = sorted(s.cloud or "" for s in await live_servers(p))
        assert clouds == ["private"] * 2 * per_member + ["public"] * 2 * per_member

        # Newest first alone would remove the private members: the tier wins over age.
        done = await signal_and_settle(p, sid, "shrink")
        assert done.status == "COMPLETE", done.status_reason
        assert sorted(s.cloud or "" for s in await live_servers(p)) == ["private"] * (
            2 * per_member
        )
        rows = await resources(p, sid)
        group_id = rows["asg"].id
        kept = sorted(
            n for n, r in rows.items() if r.group_id == group_id and r.desired == "present"
        )
        assert kept == ["asg.2", "asg.3"]
    finally:
        await p.close()
