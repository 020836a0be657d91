"""What one server listed by a cloud changes in its row, judged from a light read.

Sync lists a cloud's servers on every pass; most are unchanged since the last one. These
are the columns that decide it and the rule (`quiet`), so an unchanged server costs sync
neither a lock nor a write.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, bindparam, select

from canopy.controllers.observe import address_view, apply_observation
from canopy.domain.specs import RemoteServer
from canopy.domain.states import Phase, RemoteState, ServerStatus
from canopy.store.models import Server
from canopy.store.plans import rare, unindexed

# The phases in which a server exists on its cloud and sync observes it.
LIVE = (Phase.CONVERGE, Phase.STEADY, Phase.POWER)

# The columns that say whether a listed server changes anything (see `quiet`).
LIGHT = (
    Server.id,
    Server.cloud,
    Server.remote_id,
    Server.deleted,
    Server.phase,
    Server.status,
    Server.task_state,
    Server.desired_state,
    Server.observed_state,
    Server.action_at,
    Server.reboot_requested,
    Server.reboot_done,
    Server.launched_at,
    Server.addresses,
    Server.host,
)
COMPARED = tuple(c.key for c in LIGHT)
SETTLED = {
    (RemoteState.RUNNING, ServerStatus.ACTIVE),
    (RemoteState.STOPPED, ServerStatus.SHUTOFF),
}


def quiet(row: Any, r: RemoteServer, cloud: str, started: datetime) -> bool:
    """True when the listed server `r` changes nothing in its row, judged from `row`.

    The observation is applied to a copy of the row's columns, so this is the same rule
    `apply_observation` follows, not a second one. Only `observed_at` would differ; it
    records when the observed state last changed, so an unchanged row is not rewritten.
    """
    if r.state == RemoteState.DELETED or row.deleted or row.cloud != cloud:
        return False
    if row.remote_id != r.remote_id:
        return False  # adoption (no remote id yet) or a second copy: handled under lock
    if r.host is not None and row.host != r.host:
        return False  # on another host than recorded (or none recorded yet)
    if row.phase not in LIVE and row.phase != Phase.CREATE:
        return True  # not observed in this phase; nothing else to do
    if row.observed_state != r.state.value:
        return False
    if r.addresses and address_view(r.addresses) != row.addresses:
        return False
    # The common cases, read off apply_observation's rules: nothing moves a row that is
    # still pending, nor a steady row whose status already matches.
    if r.state == RemoteState.PENDING and row.phase in (Phase.CREATE, Phase.CONVERGE):
        return True
    if row.phase == Phase.STEADY and (r.state, row.status) in SETTLED:
        return True
    copy = SimpleNamespace(**row._asdict())
    apply_observation(copy, r.state, started, fault=r.fault, addresses=r.addresses)
    return all(getattr(copy, k) == getattr(row, k) for k in COMPARED)


# Built once (a pass at rest asks it of every cloud every interval); the cloud bound.
CONVERGING: Select[str] = (
    select(Server.id)
    .where(
        rare(Server.phase.in_([Phase.CREATE, Phase.CONVERGE])),
        unindexed(Server.cloud) == bindparam("cloud"),
    )
    .limit(1)
)


def converging(cloud: str) -> Select[str]:
    """Whether anything on `cloud` is being created or converging: one row at most.

    Sync passes come at the converging interval while there is one. The phase index
    answers it from the few rows in those phases; the cloud's own index
    would visit every row of the cloud (store/plans.py). Sync runs `CONVERGING` with the
    cloud as a parameter; this is the same statement with it bound (for plans and tests).
    """
    return CONVERGING.params(cloud=cloud)
