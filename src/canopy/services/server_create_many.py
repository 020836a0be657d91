"""Creating servers for many requests at once (a stack step's server resources).

Each request gets exactly what its own `create` would give it: the same validation, the
same quota rule with the same messages, taken in order (a request that does not fit fails
alone, and the ones after it are checked against the usage without it), the same rows and
create actions. What is shared is the cost: the project is locked and its limits and
usage counters read once, every flavor, image, zone and server group is looked up once,
the usage counters get one UPDATE, and the servers, their tags, user data and actions are
written with one INSERT per table. Every check that can refuse a request runs before
anything is written, so a refused request leaves nothing behind.

A request on a reservation (a host reservation's hint, or a reservation's private flavor)
goes through the single `create` in a savepoint of its own, in its place in the order:
those checks read the reservation's rows and are not batched.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import CanopyError
from canopy.reservations import host_use
from canopy.services import quotas
from canopy.services.server_create import (
    CreateServer,
    Found,
    ServerCreation,
    _validate_create,
    server_rows,
    write_servers,
)
from canopy.store import quota_usage
from canopy.store.models import Flavor, Image, Server

# What one request came to: its servers, or why it was refused.
Made = list[Server] | CanopyError
_Checked = tuple[int, CreateServer, Flavor, Image | None, str | None]


class ServerBulkCreation(ServerCreation):
    """ServerService's create of many requests in one transaction."""

    async def create_each(
        self,
        ctx: RequestContext,
        reqs: Sequence[CreateServer],
        *,
        session: AsyncSession,
        ids: Sequence[str] | None = None,
    ) -> list[Made]:
        """Create the servers of each request in `session`, as `create` would one by one;
        the result of each request in its place: its servers or its error. `ids`: the id
        of each request's first server, chosen by the caller (a stack's resource row names
        its server before the server is written); a request on a reservation, made by the
        single `create`, gets an id of its own."""
        s = session
        if ids is not None and len(ids) != len(reqs):
            raise ValueError("create_each: one id per request")
        out: list[Made | None] = [None] * len(reqs)
        found = Found(s, ctx)
        run: list[_Checked] = []  # consecutive plain requests, written together
        for i, req in enumerate(reqs):
            try:
                _validate_create(req)
                flavor, image = await found.check(req)
            except CanopyError as e:
                out[i] = e
                continue
            if host_use.hinted(req.hints) is None and flavor.is_public:
                run.append((i, req, flavor, image, ids[i] if ids is not None else None))
                continue
            await self._plain(s, ctx, run, out)
            run = []
            try:
                async with s.begin_nested():
                    out[i] = await self.create(ctx, req, session=s, found=found)
            except CanopyError as e:
                out[i] = e
        await self._plain(s, ctx, run, out)
        answered = [x for x in out if x is not None]
        assert len(answered) == len(reqs)  # every request has its servers or its error
        return answered

    async def _plain(
        self,
        s: AsyncSession,
        ctx: RequestContext,
        run: Sequence[_Checked],
        out: list[Made | None],
    ) -> None:
        """Check the quota of `run` in order with one lock and read, then write it."""
        if not run:
            return
        now = self.clock.now()
        project = ctx.project_id
        await quotas.lock_project(s, project)
        lim = await quotas.limits(s, self.settings, project)
        used = (await quota_usage.current(s, project)).as_dict()
        members: dict[str, int] = {}
        more = {"instances": 0, "cores": 0, "ram": 0}
        made: list[tuple[CreateServer, list[Server]]] = []
        for i, req, flavor, image, first_id in run:
            gid = req.group_id
            if gid is not None and gid not in members:
                members[gid] = await quotas.group_member_count(s, gid)
            try:
                count = quotas.fit(
                    lim,
                    used,
                    flavor,
                    min_count=req.min_count,
                    max_count=req.max_count,
                    metadata_items=len(req.metadata),
                    in_group=members[gid] if gid is not None else None,
                )
            except CanopyError as e:
                out[i] = e
                continue
            for res, per in (("instances", 1), ("cores", flavor.vcpus), ("ram", flavor.ram_mb)):
                used[res] += count * per
                more[res] += count * per
            if gid is not None:
                members[gid] += count
            servers = server_rows(ctx, req, flavor, image, None, count, now, first_id=first_id)
            made.append((req, servers))
            out[i] = servers
        if made:
            usage = quota_usage.Usage(more["instances"], more["cores"], more["ram"])
            await quota_usage.add_usage(s, project, usage)
            await write_servers(s, ctx, made, now)
