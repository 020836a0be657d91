"""Reading in bulk, before a step's walk, what its resources' checks would read one by one.

A stack of N servers waiting to boot is stepped each time some of them answer, and every
step checks each server resource still in progress: one query for its server row, and one
for its placement's reason when it has answered. Here those are two queries for the whole
step: the servers are loaded into the step's session and held by the step (so the checks'
`session.get` finds them without a query) and the reasons go into `Step.reasons`. Nothing
is decided here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from canopy.domain.states import ServerStatus
from canopy.orchestration.resources.base import Step
from canopy.orchestration.states import Status
from canopy.store.models import Placement, Server, StackResource

CHUNK = 500  # ids per IN (...): well under every database's limit on bound parameters
_ANSWERED = (ServerStatus.ACTIVE, ServerStatus.SHUTOFF)


async def prefetch(step: Step, rows: Sequence[StackResource]) -> None:
    """Load the servers of `rows` in progress, and the reasons of those that answered."""
    ids = [r.server_id for r in rows if r.server_id is not None and r.status == Status.IN_PROGRESS]
    answered: list[str] = []
    for i in range(0, len(ids), CHUNK):
        found = await step.session.execute(select(Server).where(Server.id.in_(ids[i : i + CHUNK])))
        servers = list(found.scalars())
        step.held.extend(servers)
        answered += [s.id for s in servers if s.status in _ANSWERED]
    for i in range(0, len(answered), CHUNK):
        part = answered[i : i + CHUNK]
        step.reasons.update(dict.fromkeys(part, ""))
        q = (
            select(Placement.server_id, Placement.reason)
            .where(Placement.server_id.in_(part))
            .order_by(Placement.id)
        )
        for server_id, reason in (await step.session.execute(q)).all():
            step.reasons[server_id] = reason or ""  # the latest (highest id) stays
