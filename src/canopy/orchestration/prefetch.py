"""Reading in bulk, before a step's walk, what its resources' checks would read one by one.

A stack of N servers waiting to boot is stepped each time some of them answer, and every
step checks each server resource still in progress. Here that is three queries for the
whole step: the state of every server in progress (three columns), the rows of those that
have answered or gone (loaded into the step's session and held by the step, so the checks'
`session.get` finds them without a query), and the placement reasons of those that
answered (`Step.reasons`). A server still going is not loaded: its id goes in
`Step.going`, and its check answers "wait" from that (a step of a wide stack, woken by the
first servers to boot, loaded all 200 servers to find 150 of them still building). Nothing
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
# A server in none of these states, and not deleted, is still going: every check of a
# server resource (create, update, delete) waits on it.
SETTLED = frozenset(
    s.value for s in (ServerStatus.ACTIVE, ServerStatus.SHUTOFF, ServerStatus.ERROR)
)


async def prefetch(step: Step, rows: Sequence[StackResource]) -> None:
    """Note the servers of `rows` in progress that are still going; load the others, and
    the reasons of those that answered."""
    ids = [r.server_id for r in rows if r.server_id is not None and r.status == Status.IN_PROGRESS]
    wanted: list[str] = []
    for i in range(0, len(ids), CHUNK):
        q = select(Server.id, Server.status, Server.deleted).where(
            Server.id.in_(ids[i : i + CHUNK])
        )
        for sid, status, deleted in (await step.session.execute(q)).all():
            if deleted or status in SETTLED:
                wanted.append(sid)
            else:
                step.going.add(sid)
    answered: list[str] = []
    for i in range(0, len(wanted), CHUNK):
        found = await step.session.execute(
            select(Server).where(Server.id.in_(wanted[i : i + CHUNK]))
        )
        servers = list(found.scalars())
        step.held.extend(servers)
        answered += [s.id for s in servers if s.status in _ANSWERED]
    for i in range(0, len(answered), CHUNK):
        part = answered[i : i + CHUNK]
        step.reasons.update(dict.fromkeys(part, ""))
        q2 = (
            select(Placement.server_id, Placement.reason)
            .where(Placement.server_id.in_(part))
            .order_by(Placement.id)
        )
        for server_id, reason in (await step.session.execute(q2)).all():
            step.reasons[server_id] = reason or ""  # the latest (highest id) stays
