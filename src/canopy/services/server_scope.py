"""The base of ServerService: its dependencies, its transaction, and finding a server the
caller may see (services/servers.py assembles the service)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.domain.context import RequestContext
from canopy.domain.errors import NotFound
from canopy.store.db import Database
from canopy.store.models import Server

MAX_ID = 64


class ServerScope:
    """What every part of ServerService shares: one project's scope over the servers."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    @asynccontextmanager
    async def _unit(
        self, session: AsyncSession | None, *, write: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """The caller's transaction (an API request's), or a new one of our own."""
        if session is not None:
            yield session
            return
        if write:
            async with self.db.session() as s:
                yield s
        else:
            async with self.db.read() as s:
                yield s

    async def get(
        self,
        ctx: RequestContext,
        server_id: str,
        *,
        include_deleted: bool = True,
        session: AsyncSession | None = None,
    ) -> Server:
        """One server the caller may see; a deleted one only with `include_deleted`."""
        async with self._unit(session, write=False) as s:
            server = await s.get(Server, server_id) if _could_be_id(server_id) else None
            if (
                server is None
                or not _visible(ctx, server)
                or (server.deleted and not include_deleted)
            ):
                raise NotFound(f"Instance {server_id} could not be found.")
            return server

    async def _get_for_update(self, s: AsyncSession, ctx: RequestContext, sid: str) -> Server:
        server = (
            await s.execute(select(Server).where(Server.id == sid).with_for_update())
        ).scalar_one_or_none()
        if server is None or server.deleted or not _visible(ctx, server):
            raise NotFound(f"Instance {sid} could not be found.")
        return server


def _could_be_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID and "\x00" not in value


def _visible(ctx: RequestContext, server: Server) -> bool:
    return ctx.is_cloud_admin or server.project_id == ctx.project_id
