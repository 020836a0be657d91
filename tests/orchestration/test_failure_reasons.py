"""A failure reason made of what signals sent is bounded: a wait condition joins the reasons
of every FAILURE signal (1000 ids of 64 KiB each: 64 MB) and a deployment quotes an error
output (1 MiB); the reason is copied to the resource, the stack, their events and every
`stack show` and `stack list`, so it is cut to a few kilobytes."""

from __future__ import annotations

from pathlib import Path

from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, events, resources, send_signal, settle
from .test_cfn_wait import cfn, sig, started

LONG = "r" * 60_000
MAX = 8192  # what a reason may be, give or take its prefix


async def test_a_wait_conditions_failure_reason_is_bounded(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "loud", cfn(count=5))
        await started(p, sid, "Wait")
        for i in range(5):
            await send_signal(p, sid, "WaitHandle", sig(f"id{i}", "FAILURE", LONG))
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "WaitConditionFailure: rrr" in done.status_reason
        assert len(done.status_reason) < MAX
        assert len((await resources(p, sid))["Wait"].status_reason) < MAX
        assert all(len(e.status_reason) < MAX for e in await events(p, sid))
    finally:
        await p.close()
