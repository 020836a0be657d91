"""When sync lists a cloud fully: every pass on a cloud without changes-since, and a
healing pass every `full_sync_seconds` on one with it.

A pass that lists only the changes since the last one (less an overlap) costs what changed;
a full listing costs the fleet (2.4 s of CPU at 100,000 servers). On a cloud whose
changes-since listing also reports deletions (a deleted server listed as DELETED: the sim,
Nova), the changes-since pass already finds servers deleted out of band, so the full
listing is only the safety net for what such a listing can miss (a deleted server purged
from Nova's database before the pass, a clock step past the overlap, a lost update): it
runs when `full_sync_seconds` have passed since the last one began, as Nova's own
`_sync_power_states` heals every ten minutes, not every Nth pass. A cloud whose driver
declares no changes-since (EC2) lists everything on every pass anyway, so every pass
there is full: the rows it no longer shows are found at once.

A healing pass is also the one that asks for the cloud's zones, and the one
`sync_deep_every` counts (one in that many also reads every row:
controllers/sync_digest.py), whatever the driver, so a cloud listed fully every pass is
not read deeply every pass. `full_sync_every`, if set, adds a healing pass every that
many passes (tests, benchmarks, an operator who wants the old rhythm).

When the last healing pass ran is kept by each worker, in memory: a worker's first pass of
a cloud heals (it knows nothing of the others'), and so does the first pass of a job
(no cursor yet).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from canopy.config_sections import ControllerSettings
from canopy.domain.states import Ability
from canopy.providers.base import Compute
from canopy.store.models import Job


def lists_changes(driver: Compute) -> bool:
    """Whether the driver lists changes since a time (deletions included)."""
    return driver.abilities.has(Ability.CHANGES_SINCE)


def heal_due(c: ControllerSettings, job: Job, healed: datetime | None, now: datetime) -> bool:
    """Whether a pass of the job at `now` is a healing (full) one; `healed` is when this
    worker's last healing pass of the cloud began (None: none yet)."""
    if job.cursor is None or healed is None:
        return True
    if c.full_sync_every is not None and job.runs % c.full_sync_every == 0:
        return True
    return now - healed >= timedelta(seconds=c.full_sync_seconds)
