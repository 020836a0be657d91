"""A step's signals are bounded in bytes, not only in number: 200 signals of a deployment
(1 MiB each) must not be loaded, copied and handled in one step of the event loop."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from canopy.orchestration import signals as engine
from canopy.store.models import Stack
from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, hot, send_signal, settle, signals

BIG = "x" * 900_000  # about what heat-config-notify sends at most (950000 bytes)


async def test_a_step_handles_big_signals_a_few_megabytes_at_a_time(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "big", hot({"handle": {"type": "OS::Heat::WaitConditionHandle"}}))
        assert (await settle(p, sid)).status == "COMPLETE"
        for i in range(12):
            await send_signal(p, sid, "handle", {"id": str(i), "data": BIG})
        await send_signal(p, sid, "handle", {"id": "small"})
        async with p.db.session() as s:
            stack = (await s.execute(select(Stack).where(Stack.id == sid))).scalar_one()
            handled = await engine.handle_signals(s, stack, p.clock.now(), p.service)
        assert 1 <= handled <= 5  # megabytes, not 12 of them
        # The rest in the next steps, in order, none lost.
        await p.run_until(
            lambda: _all_handled(p, sid),
        )
        done = await signals(p, sid)
        assert [s.data.get("id") for s in done] == [*map(str, range(12)), "small"]
        assert all(s.outcome.startswith("status:SUCCESS") for s in done)
    finally:
        await p.close()


async def _all_handled(p, sid: str) -> bool:  # type: ignore[no-untyped-def]
    return all(s.handled_at is not None for s in await signals(p, sid))
