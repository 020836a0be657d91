"""What the workers learn about a cloud: its health, and what its driver cannot do.

A cloud that refuses canopy's credentials (401/403, an expired key: `CloudAuthError` from
any call) is unhealthy at once, not after `unhealthy_after_failures` failed syncs: every
call to it will fail the same way until an operator fixes the credentials, so placement
must stop sending servers there now, and its availability zone shows as not available.
No server is charged for it (provisioning sends the server back to placement without
counting an attempt). The next call that succeeds, the sync's list being the one that
runs whatever the state, marks it healthy again (controllers/sync.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from canopy.controllers.fencing import LeaseLost
from canopy.domain.errors import CloudAuthError, CloudError
from canopy.providers.base import Compute
from canopy.store.db import Database
from canopy.store.models import Cloud, Job
from canopy.telemetry import CONTROLLER_STEPS

if TYPE_CHECKING:
    from canopy.controllers.runtime import Runtime

log = logging.getLogger("canopy.controllers")

REFUSED = "credentials refused: "


async def credentials_refused(db: Database, cloud: str, err: CloudAuthError) -> None:
    """Mark `cloud` unhealthy because it refused canopy's credentials (one short write)."""
    message = f"{REFUSED}{err}"[:2000]
    async with db.session() as s:
        row = await s.get(Cloud, cloud, with_for_update=True)
        if row is None:
            return
        if row.healthy:
            log.warning("cloud %s refused canopy's credentials: now unhealthy: %s", cloud, err)
        row.healthy = False
        row.health_message = message
        row.consecutive_failures += 1


def ability_map(driver: Compute) -> dict[str, str]:
    """What `driver` cannot do, as its cloud's row keeps it (`clouds.abilities`):
    ability -> the reason shown to a user who asks for it."""
    return {str(a): why for a, why in sorted(driver.abilities.missing.items())}


async def sync_failed(rt: Runtime, cloud: str, job_name: str, err: CloudError) -> None:
    """A sync pass's list failed: the job is released until the interval at rest, and the
    failure counts toward the cloud's health (a refusal of credentials is `Runtime.call`'s)."""
    now = rt.clock.now()
    async with rt.db.session() as s:
        job = await s.get(Job, job_name, with_for_update=True)
        if job is not None and job.claimed_by != rt.worker_id:
            raise LeaseLost(f"job {job_name}: now held by {job.claimed_by or 'nobody'}")
        if job is not None:
            job.last_error = str(err)
            job.next_run_at = now + timedelta(seconds=rt.settings.controllers.sync_seconds)
            job.claimed_by = None
            job.claim_expires_at = None
        c = await s.get(Cloud, cloud)
        if c is not None and not isinstance(err, CloudAuthError):
            c.consecutive_failures += 1
            c.health_message = str(err)
            if c.consecutive_failures >= rt.settings.controllers.unhealthy_after_failures:
                c.healthy = False
    CONTROLLER_STEPS.labels(controller="sync", outcome="failed").inc()
