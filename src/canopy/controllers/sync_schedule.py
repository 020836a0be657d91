"""When each cloud's sync pass is worth trying, from this worker's memory alone.

An idle loop must not open a write transaction to learn that a cloud is not due yet, nor
lease again and again a cloud another worker holds. `_not_before` is when a cloud's job is
next worth asking for at rest (its interval, or when another worker's lease could end);
`_held_off` is when it is worth trying even for a create in a hurry (`Runtime.sync_soon`,
which otherwise skips the interval): another worker held the job, or the last pass failed.
Without it a hurried cloud held elsewhere would be leased again at once, one write
transaction after another, for as long as the other worker's lease lasted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from canopy.controllers.boot_times import GAP
from canopy.controllers.runtime import Runtime
from canopy.store.leases import live
from canopy.store.models import Job


class SyncSchedule:
    """What `SyncController` remembers of each cloud's next pass."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._not_before: dict[str, datetime] = {}
        self._held_off: dict[str, datetime] = {}
        self._last_pass: dict[str, datetime] = {}  # when each cloud's last pass started
        # The next run this worker's own last pass recorded on each cloud's job, until the
        # next lease uses it: `_due` needs no read to learn what it wrote itself.
        self._recorded: dict[str, datetime] = {}

    def next_due_in(self, now: datetime, skip: set[str] | None = None) -> float | None:
        """Seconds until the first cloud this worker knows of (but `skip`) is due again
        (None: unknown)."""
        clouds = [c for c in self.rt.drivers if not skip or c not in skip]
        waits = [(self._not_before.get(c, now) - now).total_seconds() for c in clouds]
        waits += [
            (max(at, self._held_off.get(c, at), self._gap_ends(c, at)) - now).total_seconds()
            for c, at in self.rt.sync_soon.firsts(skip).items()
            if c in self.rt.drivers  # an ask no driver here serves must not make it spin
        ]
        return max(0.0, min(waits)) if waits else None

    def may_be_due(self, cloud: str, now: datetime) -> bool:
        """From memory alone: whether `cloud`'s pass is asked for or may be due."""
        if now < self._held_off.get(cloud, now):
            return False
        return self._hurried(cloud, now) or now >= self._not_before.get(cloud, now)

    def not_before(self, cloud: str, at: datetime) -> None:
        self._not_before[cloud] = at

    def hold_off(self, cloud: str, at: datetime) -> None:
        """No pass over `cloud` before `at`, even one a create asks for (but a forced one)."""
        self._not_before[cloud] = self._held_off[cloud] = at

    def _held_elsewhere(self, cloud: str, now: datetime) -> None:
        """Another worker holds the job: look again when its lease could have run out
        (or sooner, at the interval at rest, if that comes first)."""
        c = self.rt.settings.controllers
        self.hold_off(cloud, now + timedelta(seconds=min(c.sync_seconds, c.lease_seconds)))

    def _hurried(self, cloud: str, now: datetime) -> bool:
        """Whether a create recorded on `cloud` asks for a pass now (`Runtime.sync_soon`):
        asked for by now, and GAP after the cloud's last pass began at least."""
        return self.rt.sync_soon.due(cloud, now) and now >= self._gap_ends(cloud, now)

    def _gap_ends(self, cloud: str, at: datetime) -> datetime:
        """When an asked pass over `cloud` may start: GAP after its last pass began."""
        last = self._last_pass.get(cloud)
        return at if last is None else last + timedelta(seconds=GAP)

    async def _due(self, cloud: str, name: str, now: datetime) -> bool:
        """Whether the job may be due: from memory (the interval, or the next run this
        worker recorded), else from a read (no write lock)."""
        if now < self._not_before.get(cloud, now):
            return False
        recorded = self._recorded.get(cloud)
        if recorded is not None and now >= recorded:
            # Due by what this worker wrote at its last pass. Had another worker run it
            # since (and moved it on) or held it now, the lease finds that, in one statement.
            return True
        rt = self.rt
        async with rt.db.read() as s:
            row = (
                await s.execute(
                    select(
                        Job.next_run_at, Job.claimed_by, live(Job, rt.lease_now()).label("held")
                    ).where(Job.name == name)
                )
            ).one_or_none()
        if row is None:
            return True  # never run: lease_job creates it
        next_run, holder, held = row
        c = rt.settings.controllers
        # Look again then, or sooner if the poll comes round first: another worker may have
        # moved the job meanwhile.
        cap = now + timedelta(seconds=c.sync_seconds)
        wait = next_run if next_run is not None and next_run > now else None
        if held and holder != rt.worker_id:
            # Another worker is on it: look again when its lease could have run out, even
            # if a create asks for a pass meanwhile.
            self._held_elsewhere(cloud, now)
            return False
        if wait is None:
            return True
        self._not_before[cloud] = min(wait, cap)
        return False
