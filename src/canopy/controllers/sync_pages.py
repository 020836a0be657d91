"""Sync's listing, a page at a time: what a pass holds is one page of servers, not a cloud.

A full listing of a big cloud named every server it had in one Python list (100,000
`RemoteServer` objects, with their address dicts), held for the whole pass. A driver now
answers a listing in pages (`Compute.list_page`, one cloud call each, fenced on the job's
lease like any of sync's calls), and sync compares and writes each page before it asks
for the next, then lets it go. What a full pass keeps across pages is the set of remote ids
the listing showed alive (strings, for the rows it no longer shows) and the leaks found.

A real cloud is not a snapshot: servers come and go while the pages are read. A server
created during a listing is recorded after the pass began, so it is never taken for gone
(`remote_recorded_at < started`); one deleted during it is seen by the next pass. Nor is a
cloud's order kept while it pages: Nova lists the servers its scheduler has not yet placed
(build requests) ahead of its cells' servers, and a marker found among them restarts the
cells' listing from the top, so a page may repeat servers, and one placed between two pages
may be on none. So a server on two pages counts once, and a row that a listing of several
pages no longer shows is asked about once (`get`, one call per row, so what that costs
grows with the servers gone, not the fleet) before it is marked gone; a listing of one page
is a snapshot, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from canopy.controllers.fencing import Hold
from canopy.controllers.runtime import Runtime
from canopy.domain.errors import CloudError
from canopy.domain.specs import RemoteServer
from canopy.domain.states import RemoteState
from canopy.store.models import Server


class Pages:
    """One pass's listing of one cloud, asked for a page at a time."""

    def __init__(self, rt: Runtime, cloud: str, hold: Hold, since: datetime | None) -> None:
        self.rt = rt
        self.cloud = cloud
        self.hold = hold
        self.since = since
        self.size = rt.settings.controllers.sync_page_size
        self.count = 0  # pages listed so far
        self._marker: str | None = None
        self._done = False

    async def next(self) -> list[RemoteServer] | None:
        """The next page's servers (one fenced cloud call), or None after the last page."""
        if self._done:
            return None
        driver = self.rt.driver(self.cloud)
        since, marker, size = self.since, self._marker, self.size
        page = await self.rt.call(
            self.cloud, "list", lambda: driver.list_page(since, marker, size), hold=self.hold
        )
        self.count += 1
        self._marker = page.next
        self._done = page.next is None
        return page.servers

    async def still_there(self, ids: Sequence[str]) -> set[str]:
        """Remote ids of rows `ids` (which the listing did not show) that the cloud still
        has, asked one at a time; one it could not answer for counts as still there (the
        next full pass asks again)."""
        q = select(Server.remote_id).where(Server.id.in_(ids), Server.remote_id.is_not(None))
        async with self.rt.db.read() as r:
            remote_ids = [str(rid) for rid in await r.scalars(q)]
        driver = self.rt.driver(self.cloud)
        out: set[str] = set()
        for rid in remote_ids:
            try:
                found = await self.rt.call(
                    self.cloud,
                    "get",
                    lambda rid=rid: driver.get(rid),  # type: ignore[misc]
                    hold=self.hold,
                )
            except CloudError:
                out.add(rid)
                continue
            if found is not None and found.state != RemoteState.DELETED:
                out.add(rid)
        return out
