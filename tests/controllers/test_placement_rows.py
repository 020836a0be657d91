"""A placed server's row, written by placement's one UPDATE for the batch
(controllers/placement_rows.py): every column a placement sets, on every server of the
batch, including one that waited for capacity first (its wait cleared)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from canopy.store.models import Claim, Cloud, InstanceAction, InstanceActionEvent, Placement, Server

from .harness import PRIVATE, Plane, make_plane

TOML = "[scheduler]\nschedule_timeout_seconds = 600\nretry_seconds = 5\n" + PRIVATE


async def _healthy(p: Plane, healthy: bool) -> None:
    async with p.db.session() as s:
        await s.execute(update(Cloud).where(Cloud.name == "private").values(healthy=healthy))


async def test_a_batch_is_placed_and_a_wait_is_cleared(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=TOML)
    try:
        # The only cloud is unhealthy (a filter that may pass later): the first waits.
        await _healthy(p, False)
        [first] = await p.create(1, name="first")
        assert await p.worker.placement.run_once() == 1
        async with p.db.read() as s:
            waited = (await s.execute(select(Server).where(Server.id == first))).scalar_one()
        assert waited.phase == "schedule" and waited.cloud is None
        assert waited.schedule_deadline is not None and waited.next_attempt_at is not None

        async with p.db.session() as s:  # as if its earlier creates had been retried
            await s.execute(update(Server).where(Server.id == first).values(retries=2))
        await _healthy(p, True)
        p.clock.advance(5)
        later = await p.create(2, name="later")
        placed_at = p.clock.now()
        assert await p.worker.placement.run_once() == 3
        async with p.db.read() as s:
            rows = {
                sv.id: sv
                for sv in (
                    await s.execute(select(Server).where(Server.id.in_([first, *later])))
                ).scalars()
            }
            placements = [
                (pl.server_id, pl.attempt, pl.cloud)
                for pl in (await s.execute(select(Placement).order_by(Placement.id))).scalars()
            ]
            claims = sorted(tuple(r) for r in await s.execute(select(Claim.server_id, Claim.cloud)))
            events = sorted(
                tuple(r)
                for r in await s.execute(
                    select(InstanceAction.server_id, InstanceActionEvent.event)
                    .join(InstanceAction, InstanceAction.id == InstanceActionEvent.action_id)
                    .where(InstanceActionEvent.event.like("schedule (attempt%"))
                )
            )  # fmt: skip
        for sid in (first, *later):
            sv = rows[sid]
            assert (sv.cloud, sv.phase, sv.task_state, sv.status) == (
                "private",
                "create",
                "spawning",
                "BUILD",
            )
            assert (sv.attempts, sv.retries) == (1, 0)
            assert sv.next_attempt_at is None and sv.schedule_deadline is None
            assert sv.updated_at == placed_at and sv.reserved_host_id is None
        # The first's wait is on record (no cloud), then each server's placement.
        assert placements[0] == (first, 1, None)
        assert sorted(placements[1:]) == sorted((sid, 1, "private") for sid in (first, *later))
        assert claims == sorted((sid, "private") for sid in (first, *later))
        assert events == sorted((sid, "schedule (attempt 1)") for sid in (first, *later))

        # And the placed servers go on to be created there.
        await p.run_until(lambda: _all_active(p, 3))
    finally:
        await p.close()


async def _all_active(p: Plane, n: int) -> bool:
    return await p.count(status="ACTIVE") == n
