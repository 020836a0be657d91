"""Sync's pages on a real Nova whose servers go while it pages: the marker's server
deleted and its row archived (`nova-manage db archive_deleted_rows`) between two pages,
which Nova answers with 400 "marker [<id>] not found"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from canopy.domain.specs import RemoteServer, Resources
from canopy.domain.states import RemoteState
from canopy.providers.openstack.driver import OpenStackCompute
from tests.interop.nova.harness import RealNova
from tests.providers.openstack.conftest import in_state, wait_for
from tests.providers.openstack.test_driver import spec

TINY = Resources(vcpus=1, ram_mb=512, disk_gb=1)


async def _gone(nova: RealNova, remote_id: str) -> None:
    """Delete a server behind canopy's back, wait until Nova says it is gone, archive."""
    with nova.http() as http:
        http.delete(f"/servers/{remote_id}").raise_for_status()
        for _ in range(300):  # Nova is another process, on its own clock
            if http.get(f"/servers/{remote_id}").status_code == 404:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"Nova never deleted {remote_id}")
    assert "instances" in nova.archive_deleted()


async def _made(driver: OpenStackCompute, nova: RealNova, n: int) -> list[RemoteServer]:
    tiny = {"flavor_name": "m1.tiny", "resources": TINY}  # the fake host holds 8
    made = [await driver.create(spec(nova, name=f"churn-{i}", **tiny)) for i in range(n)]
    for r in made:  # placed: Nova's order is stable once its scheduler has them
        await wait_for(lambda r=r: driver.get(r.remote_id), in_state(RemoteState.RUNNING))
    return made


@pytest.mark.parametrize("since", [None, "changes-since"])
async def test_a_page_whose_marker_server_was_deleted_and_archived_goes_on(
    driver: OpenStackCompute, real_nova: RealNova, since: str | None
) -> None:
    """Page 1 (limit 2), its last server deleted and archived, page 2: no error, and every
    remaining server is seen, once."""
    mark = datetime.now(UTC) - timedelta(seconds=5) if since else None
    made = await _made(driver, real_nova, 4)
    ours = {r.remote_id for r in made}
    try:
        first = await driver.list_page(mark, None, 2)
        assert first.next is not None
        page1 = [r.remote_id for r in first.servers]
        assert len(page1) == 2 and set(page1) <= ours  # the newest two: ours
        await _gone(real_nova, page1[-1])
        seen = list(page1)
        marker: str | None = first.next
        while marker is not None:
            page = await driver.list_page(mark, marker, 2)
            seen += [r.remote_id for r in page.servers]
            marker = page.next
        assert ours - {page1[-1]} <= set(seen)
        assert len(seen) == len(set(seen))  # the previous id took over: nothing repeated
    finally:
        for r in made:
            await driver.delete(r.remote_id)


async def test_a_listing_whose_page_servers_are_all_archived_starts_over(
    driver: OpenStackCompute, real_nova: RealNova
) -> None:
    """Every server the marker names gone: the listing starts over from the top, and
    still shows every remaining server."""
    made = await _made(driver, real_nova, 4)
    ours = {r.remote_id for r in made}
    try:
        first = await driver.list_page(None, None, 2)
        assert first.next is not None
        page1 = [r.remote_id for r in first.servers]
        assert set(page1) <= ours
        for rid in page1:
            await _gone(real_nova, rid)
        seen: list[str] = []
        marker: str | None = first.next
        while marker is not None:
            page = await driver.list_page(None, marker, 2)
            seen += [r.remote_id for r in page.servers]
            marker = page.next
        assert ours - set(page1) <= set(seen)
        assert not set(page1) & set(seen)
    finally:
        for r in made:
            await driver.delete(r.remote_id)
