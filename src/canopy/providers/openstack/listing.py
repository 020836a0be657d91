"""The driver's listings of `GET /servers/detail`: sync's pages, a create's look-up by
canopy id, and the schedule watch's changes-since listing (which sync's pages feed).

Every listing pages with Nova's limit and marker, kept going when a marker's server has
gone from Nova's database meanwhile (paging.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from canopy.domain.clock import Clock
from canopy.domain.specs import RemoteServer
from canopy.domain.states import RemoteState
from canopy.providers.base import CANOPY_ID_META, ListPage
from canopy.providers.openstack.client import NovaClient
from canopy.providers.openstack.options import OpenStackOptions
from canopy.providers.openstack.paging import PageMarker, next_page
from canopy.providers.openstack.schedule_watch import ScheduleWatch
from canopy.providers.openstack.states import to_remote

T = TypeVar("T")


class Runner(Protocol):
    """The driver's way of running a blocking call: in a thread, under its limit."""

    def __call__(self, fn: Callable[[], T]) -> Awaitable[T]: ...


class ServerListing:
    """One cloud's server listings, made through the driver's `run`."""

    def __init__(
        self, client: NovaClient, run: Runner, clock: Clock, options: OpenStackOptions
    ) -> None:
        self._client = client
        self._run = run
        self._clock = clock
        self._overlap = timedelta(seconds=options.changes_since_overlap_seconds)
        self.watch = ScheduleWatch(
            self.changed_since,
            clock,
            options.schedule_poll_seconds,
            options.changes_since_overlap_seconds,
        )

    async def servers(self, params: Mapping[str, Any], operation: str) -> list[dict[str, Any]]:
        """Every server of a listing with `params`, each once."""
        return await self._run(lambda: list(self._client.servers(params, operation)))

    async def find(self, canopy_id: str) -> RemoteServer | None:
        """The live server carrying `canopy_id` (the oldest, if there are copies)."""
        # Nova filters `name` by regular expression; every name canopy gives carries the
        # id (see states.server_name), so the child returns a handful, not every server.
        marker = f"-canopy-{canopy_id.split('-')[0]}"
        listed = await self.servers({"name": marker}, "find")
        mine = [
            to_remote(s)
            for s in listed
            if (s.get("metadata") or {}).get(CANOPY_ID_META) == canopy_id
        ]
        live = [r for r in mine if r.state != RemoteState.DELETED]
        if not live:
            return None
        return min(live, key=lambda r: (r.created_at is None, r.created_at, r.remote_id))

    async def page(
        self, changes_since: datetime | None, marker: str | None, limit: int
    ) -> ListPage:
        """One page of sync's listing (the driver's `list_page`). The marker is a
        PageMarker's text: the ids to page after and, with changes-since, when the
        listing's first page was asked (the watch takes a whole listing as of then)."""
        params: dict[str, Any] = {}
        at = PageMarker.decode(marker) if marker else None
        since = asked_at = None
        if changes_since is not None:
            since = changes_since - self._overlap
            params["changes-since"] = since.isoformat()
            asked_at = at.asked_at if at is not None and at.asked_at else self._clock.now()
        listed, after = await self._run(lambda: next_page(self._client, params, "list", at, limit))
        if since is not None and asked_at is not None:
            self.watch.offer(listed, since, asked_at, whole=after is None)
        if after is not None:
            after = PageMarker(after.ids, after.restarts, asked_at)
        out = [to_remote(s) for s in listed]
        return ListPage(
            [r for r in out if r.canopy_id is not None],
            after.encode() if after is not None else None,
        )

    async def changed_since(self, since: datetime) -> list[dict[str, Any]]:
        """The schedule watch's listing: every server changed since `since`."""
        return await self.servers(
            {"changes-since": since.isoformat()}, "list servers being scheduled"
        )
