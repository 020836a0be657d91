"""Paging past a marker Nova no longer has (a scripted Nova, no network): the next id
the marker carries, then the top again, a bounded number of times; any other error
stands. The real Nova's 400 is in test_listing.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from canopy.domain.clock import FakeClock
from canopy.domain.errors import CloudError
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.errors import MarkerNotFound, from_status
from canopy.providers.openstack.options import OpenStackOptions
from canopy.providers.openstack.paging import (
    KEEP,
    RESTARTS,
    PageMarker,
    every_server,
    next_page,
)


class ScriptedNova:
    """Nova's paging over `order` (newest first): a deleted server is not listed but is
    still a marker (its row is kept); an archived one is neither."""

    def __init__(self, n: int) -> None:
        self.order = [f"s{i:02d}" for i in range(n)]
        self.deleted: set[str] = set()
        self.archived: set[str] = set()
        self.calls: list[str | None] = []
        self.refuse: CloudError | None = None
        # called after each page with what it listed (the churn a test scripts)
        self.then: Callable[[ScriptedNova, list[str]], None] | None = None

    def servers_page(
        self, params: Mapping[str, Any], operation: str, marker: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        self.calls.append(marker)
        if self.refuse is not None:
            raise self.refuse
        start = 0
        if marker is not None:
            if marker in self.archived or marker not in self.order:
                # what client.request makes of Nova's answer
                raise from_status(400, f"marker [{marker}] not found", cloud="c",
                                  operation=operation, marker=marker)  # fmt: skip
            start = self.order.index(marker) + 1
        gone = self.deleted | self.archived
        listed = [i for i in self.order[start:] if i not in gone][:limit]
        if self.then is not None:
            self.then(self, listed)
        return [{"id": i, "metadata": {"canopy_id": i}} for i in listed], len(listed) >= limit

    def archive(self, *ids: str) -> None:
        self.archived.update(ids)

    def close(self) -> None:
        pass


def _ids(servers: list[dict[str, Any]]) -> list[str]:
    return [str(s["id"]) for s in servers]


def test_a_marker_whose_server_is_archived_pages_on_after_the_id_before_it() -> None:
    nova = ScriptedNova(6)
    page, marker = next_page(nova, {}, "list", None, 2)
    assert _ids(page) == ["s00", "s01"] and marker == PageMarker(("s01", "s00"))
    nova.archive("s01")
    page, marker = next_page(nova, {}, "list", marker, 2)
    assert _ids(page) == ["s02", "s03"]  # nothing repeated, nothing missed
    assert nova.calls == [None, "s01", "s00"]
    assert marker == PageMarker(("s03", "s02", "s00"))  # the page's last, then the one that held


def test_a_deleted_server_kept_by_nova_is_still_the_marker() -> None:
    nova = ScriptedNova(4)
    _, marker = next_page(nova, {}, "list", None, 2)
    nova.deleted.add("s01")
    page, _ = next_page(nova, {}, "list", marker, 2)
    assert _ids(page) == ["s02", "s03"] and nova.calls == [None, "s01"]


def test_when_every_id_is_gone_the_listing_starts_over_and_each_server_counts_once() -> None:
    nova = ScriptedNova(5)
    _, marker = next_page(nova, {}, "list", None, 2)
    nova.archive("s00", "s01")
    page, after = next_page(nova, {}, "list", marker, 2)
    assert _ids(page) == ["s02", "s03"] and nova.calls == [None, "s01", "s00", None]
    assert after == PageMarker(("s03", "s02"), restarts=1)
    assert PageMarker.decode(after.encode()) == after

    def churn(n: ScriptedNova, listed: list[str]) -> None:
        if len(n.calls) == 2:  # after page 2, every id its marker carries archived
            n.archive("s01", "s02", "s03")

    nova = ScriptedNova(6)
    nova.then = churn
    listed = [s["id"] for s in every_server(nova, {}, "list", 2)]
    assert nova.calls == [None, "s01", "s03", "s02", "s01", None, "s04"]  # s00 listed twice
    assert listed == ["s00", "s01", "s02", "s03", "s04", "s05"]


def test_a_listing_that_keeps_losing_its_place_fails_after_a_bounded_number_of_calls() -> None:
    nova = ScriptedNova(100)

    def churn(n: ScriptedNova, listed: list[str]) -> None:
        n.archive(*listed)  # every server deleted and archived as soon as it is listed

    nova.then = churn
    marker: PageMarker | None = None
    with pytest.raises(MarkerNotFound, match="lost its place 4 times") as e:
        for _ in range(50):
            _, marker = next_page(nova, {}, "list", marker, 2)
    assert e.value.cloud == "c"
    assert marker is not None and marker.restarts == RESTARTS
    assert len(nova.calls) <= (RESTARTS + 1) * (KEEP + 1)


def test_any_other_error_stands_at_once() -> None:
    nova = ScriptedNova(4)
    _, marker = next_page(nova, {}, "list", None, 2)
    nova.refuse = from_status(400, "Invalid changes-since value", cloud="c", operation="list",
                              marker="s01")  # fmt: skip
    assert not isinstance(nova.refuse, MarkerNotFound)
    with pytest.raises(CloudError, match="Invalid changes-since"):
        next_page(nova, {}, "list", marker, 2)
    assert nova.calls == [None, "s01"]


def test_the_marker_text_keeps_the_older_forms() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert PageMarker.decode("abc") == PageMarker(("abc",))
    assert PageMarker.decode(f"abc {at.isoformat()}") == PageMarker(("abc",), 0, at)
    m = PageMarker(("a", "b"), 2, at)
    assert PageMarker.decode(m.encode()) == m and " " not in PageMarker(("a",)).encode()


async def test_a_changes_since_listing_that_starts_over_keeps_when_it_was_first_asked() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    nova = ScriptedNova(5)
    opts = OpenStackOptions(cloud="x", network="none")
    driver = OpenStackCompute("x", opts, clock, client=nova)  # type: ignore[arg-type]
    since = clock.now()
    first = await driver.list_page(since, None, 2)
    assert first.next is not None
    asked = PageMarker.decode(first.next).asked_at
    assert asked == clock.now()
    clock.advance(30)
    nova.archive("s00", "s01")
    second = await driver.list_page(since, first.next, 2)
    assert [r.remote_id for r in second.servers] == ["s02", "s03"]
    assert second.next is not None
    assert PageMarker.decode(second.next) == PageMarker(("s03", "s02"), 1, asked)
    await driver.close()
