"""Groups and signals survive a worker dying mid-step: the step's members, servers and the
signal's effect are rolled back together, and the next worker does them once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canopy.orchestration.resources.base import Progress, Step
from canopy.orchestration.resources.server import NovaServer
from tests.controllers.harness import make_plane

from .helpers import (
    CLOUDS,
    create,
    hot,
    live_servers,
    resources,
    send_signal,
    server,
    settle,
    signals,
)
from .test_crash import _successor

GROUP = hot(
    {
        "grp": {
            "type": "OS::Heat::AutoScalingGroup",
            "properties": {
                "min_size": 1,
                "max_size": 10,
                "desired_capacity": 3,
                "resource": server(),
            },
        },
        "up": {
            "type": "OS::Heat::ScalingPolicy",
            "properties": {
                "auto_scaling_group_id": {"get_resource": "grp"},
                "adjustment_type": "change_in_capacity",
                "scaling_adjustment": 3,
            },
        },
    }
)


async def test_a_member_step_and_a_scaling_that_die_are_redone_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "crashy", GROUP)
        real = NovaServer.create_many
        dying = True

        async def dies_once_written(self: NovaServer, step: Step, rows: Any) -> list[Progress]:
            progress = await real(self, step, rows)
            if dying:
                raise RuntimeError("kill -9")  # the worker dies with the servers written
            return progress

        monkeypatch.setattr(NovaServer, "create_many", dies_once_written)
        assert await p.worker.orchestration.run_once() == 1
        assert await live_servers(p) == []  # the members' servers went with the step
        assert await resources(p, sid) == {}

        nxt = _successor(p)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        dying = False
        done = await settle(nxt, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        assert len(await live_servers(p)) == 3

        # A scaling whose step dies: the signal stays pending and is acted on once.
        await send_signal(p, sid, "up")
        dying = True
        assert await nxt.worker.orchestration.run_once() == 1
        assert (await signals(p, sid))[-1].handled_at is None
        assert len(await live_servers(p)) == 3
        third = _successor(nxt)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        dying = False
        await third.worker.orchestration.run_once()
        done = await settle(third, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert len(await live_servers(p)) == 6
        assert [s.outcome for s in await signals(p, sid)] == ["scaling grp from 3 to 6"]
        rows = await resources(p, sid)
        assert {r.server_id for r in rows.values() if r.group_id} == {
            s.id for s in await live_servers(p)
        }
    finally:
        await p.close()
