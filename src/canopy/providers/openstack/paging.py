"""Nova's limit/marker paging of `GET /servers/detail`, kept going while servers go.

Nova pages a listing after a marker, the id of the last server of the page before, and
answers 400 "marker [<id>] not found" when that server is no longer in its database
(nova/api/openstack/compute/servers.py). A deleted server still serves as a marker while
its row is kept (Nova looks the marker up with `read_deleted='yes'`,
nova/compute/instance_list.py), so the 400 comes once the row is gone: archived or purged
(`nova-manage db archive_deleted_rows`, which operators run on a schedule, also drops the
instance mapping), or a server deleted before a cell had it (a build request). A cloud
whose servers churn would otherwise fail every listing long enough to meet one.

So a page's marker (`PageMarker`, opaque to its callers) carries the last few ids listed
(`KEEP`, the page's last first, then those the page's own marker still had), and a marker
that is not found is retried with the next one. Those are earlier in Nova's order (newest
first), so the page starts a little before where it would have, after servers that are
gone: it repeats none that a listing without them shows. When all are gone, the listing
starts over from the top (its callers count a server seen twice once), at most `RESTARTS`
times a listing; after that, and for any other 400, the error stands.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from canopy.providers.openstack.errors import MarkerNotFound

KEEP = 3  # ids a page's marker carries
RESTARTS = 3  # times one listing may start over from the top


class PagedServers(Protocol):
    def servers_page(
        self, params: Mapping[str, Any], operation: str, marker: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """One call: a page's servers, and whether more follow (client.py)."""
        ...


@dataclass(frozen=True, slots=True)
class PageMarker:
    """Where a listing goes on: the ids to page after (the first that Nova still has),
    the times it started over, and (changes-since) when its first page was asked."""

    ids: tuple[str, ...]
    restarts: int = 0
    asked_at: datetime | None = None

    def encode(self) -> str:
        """`id,id,id[/restarts][ asked_at]`: Nova's ids are UUIDs (no `,`, `/` or space)."""
        out = ",".join(self.ids) + (f"/{self.restarts}" if self.restarts else "")
        return out + (f" {self.asked_at.isoformat()}" if self.asked_at is not None else "")

    @classmethod
    def decode(cls, text: str) -> PageMarker:
        ids_part, _, asked = text.partition(" ")
        ids, _, restarts = ids_part.partition("/")
        return cls(
            tuple(i for i in ids.split(",") if i),
            int(restarts) if restarts else 0,
            datetime.fromisoformat(asked) if asked else None,
        )


def next_page(
    client: PagedServers,
    params: Mapping[str, Any],
    operation: str,
    marker: PageMarker | None,
    limit: int,
) -> tuple[list[dict[str, Any]], PageMarker | None]:
    """One page after `marker` (None: the first) and the next page's marker (None: this
    was the last). Blocking: at most KEEP + 1 calls, one unless markers are gone. Raises
    MarkerNotFound when a listing's markers have all gone more than RESTARTS times."""
    start = marker or PageMarker(())
    tried = list(start.ids)
    gone: MarkerNotFound | None = None
    while tried:
        try:
            servers, more = client.servers_page(params, operation, tried[0], limit)
        except MarkerNotFound as e:
            gone = e
            tried.pop(0)
            continue
        return servers, _after(servers, more, replace(start, ids=tuple(tried)))
    if gone is not None:  # every id gone: from the top, or give up
        if start.restarts >= RESTARTS:
            raise MarkerNotFound(
                f"{gone} (the listing lost its place {RESTARTS + 1} times: its servers "
                "deleted and archived while it paged)",
                cloud=gone.cloud,
            ) from gone
        start = PageMarker((), start.restarts + 1, start.asked_at)
    servers, more = client.servers_page(params, operation, None, limit)
    return servers, _after(servers, more, start)


def _after(servers: list[dict[str, Any]], more: bool, start: PageMarker) -> PageMarker | None:
    if not more or not servers:
        return None
    listed = tuple(str(s["id"]) for s in reversed(servers))
    return replace(start, ids=(listed + tuple(i for i in start.ids if i not in listed))[:KEEP])


def every_server(
    client: PagedServers, params: Mapping[str, Any], operation: str, limit: int
) -> Iterator[dict[str, Any]]:
    """Every server of a listing, page by page, each once (a restart repeats some)."""
    seen: set[str] = set()
    marker: PageMarker | None = None
    while True:
        servers, marker = next_page(client, params, operation, marker, limit)
        for s in servers:
            if str(s["id"]) not in seen:
                seen.add(str(s["id"]))
                yield s
        if marker is None:
            return
