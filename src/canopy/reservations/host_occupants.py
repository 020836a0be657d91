"""The servers on a physical host, as Canopy last heard of them: registering a host for
reservation is refused while any are there, as Blazar's `create_computehost` refuses a
host Nova lists servers on (HostHavingServers, 409).

The API never asks a cloud, so the answer comes from the servers' rows: `servers.host` is
the host the cloud reported each one on (written when its create is recorded and by sync).
A server being created on the host's cloud whose host is not known yet might be landing on
it; that is refused too (409, try again), so a registered host never starts out with an
ordinary server on it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict
from canopy.domain.states import Phase
from canopy.store.models import Server

# Phases in which a server may be on its cloud with its host not yet recorded.
_UNSETTLED = (Phase.CREATE, Phase.RESCHEDULE, Phase.CONVERGE)
# Most servers named in one refusal (a host holds far fewer).
SHOWN = 1000


class HostHavingServers(Conflict):
    """Blazar's manager error HostHavingServers: 409, "Servers [...] found for host H".

    `servers` are Nova's hypervisor server entries, `{"name", "uuid"}` each; the message
    is Blazar's own text, rendered (a Conflict) in Blazar's body for the errors of a
    route's work, as every domain error under /reservation is (api/reservation/faults.py)."""

    def __init__(self, host: str, servers: list[dict[str, str]]) -> None:
        self.host = host
        self.servers = servers
        super().__init__(f"Servers [{servers}] found for host {host}")


async def refuse_occupied(s: AsyncSession, cloud: str, host: str, asked_as: str) -> None:
    """Raise HostHavingServers if a live server is on `host` of `cloud` (`asked_as`: the
    name the caller gave, which Blazar's message repeats), or Conflict if one being
    created there has no host recorded yet."""
    on_host = (
        await s.execute(
            select(Server.id, Server.name)
            .where(Server.cloud == cloud, Server.host == host, Server.deleted.is_(False))
            .order_by(Server.created_at, Server.id)
            .limit(SHOWN)
        )
    ).all()
    if on_host:
        raise HostHavingServers(asked_as, [{"name": n, "uuid": i} for i, n in on_host])
    unsettled = (
        await s.execute(
            select(Server.id)
            .where(
                Server.cloud == cloud,
                Server.host.is_(None),
                Server.deleted.is_(False),
                Server.phase.in_(_UNSETTLED),
            )
            .order_by(Server.id)
            .limit(5)
        )
    ).scalars()
    ids = list(unsettled)
    if ids:
        raise Conflict(
            f"Host {asked_as} cannot be registered yet: server(s) {', '.join(ids)} are "
            f"being created on cloud {cloud} and their host is not known yet (they may be "
            "landing on it); try again once they are ACTIVE"
        )
