"""The servers on a physical host, as Canopy last heard of them: registering a host for
reservation is refused while any are there, as Blazar's `create_computehost` refuses a
host Nova lists servers on (HostHavingServers, 409).

The API never asks a cloud, so the answer comes from the servers' rows: `servers.host` is
the host the cloud reported each one on (written when its create is recorded and by sync).
A server on the host's cloud whose host is not known might be on it, so registration is
refused (409, try again) while there is one: one being created (its host is recorded once
the cloud reports it), and one the cloud runs whose host has not been recorded yet, a row
from before `servers.host` existed (migration 0024), filled by the next full sync pass.
So a registered host never starts out with an ordinary server on it. (A server a cloud
with hosts reports on no host at all, which the sim never does, holds registration back
until it is deleted: safety first.)
"""

from __future__ import annotations

from sqlalchemy import or_, select
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
    name the caller gave, which Blazar's message repeats), or Conflict while a live
    server on `cloud` that may be on the cloud has no host recorded."""
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
    unknown = (
        await s.execute(
            select(Server.id)
            .where(
                Server.cloud == cloud,
                Server.host.is_(None),
                Server.deleted.is_(False),
                or_(Server.phase.in_(_UNSETTLED), Server.remote_id.is_not(None)),
            )
            .order_by(Server.id)
            .limit(5)
        )
    ).scalars()
    ids = ", ".join(unknown)
    if ids:
        raise Conflict(
            f"Host {asked_as} cannot be registered yet: the host of server(s) {ids} on "
            f"cloud {cloud} is not known yet (being created, or not reported by the cloud "
            "since it was recorded), so they may be on it; try again once they are ACTIVE "
            "and the next sync pass has recorded their hosts"
        )
