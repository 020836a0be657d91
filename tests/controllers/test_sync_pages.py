"""Sync lists a cloud a page at a time (controllers/sync_pages.py): a pass holds one page
of listed servers, and a pass of many pages finds what a pass of one page found."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from canopy.domain.specs import RemoteServer
from canopy.domain.states import PowerAction
from canopy.providers.base import ListPage
from canopy.store.leases import lease_job
from canopy.store.models import Job, Server

from .harness import Plane, make_plane

PAGE = 3

CLOUDS = """
[controllers]
sync_seconds = 5
full_sync_every = 1
sync_deep_every = {deep}
sync_page_size = {page}

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 16
boot_seconds = 1
"""

Lister = Callable[[datetime | None, str | None, int], Awaitable[ListPage]]


async def _plane(db_url: str, tmp_path: Path, deep: int = 1, page: int = PAGE) -> Plane:
    return await make_plane(db_url, tmp_path, toml=CLOUDS.format(deep=deep, page=page))


async def _remote_ids(p: Plane, ids: list[str]) -> list[str]:
    out = []
    for sid in ids:
        rid = (await p.service.get(p.ctx, sid)).remote_id
        assert rid is not None
        out.append(rid)
    return out


def _wrap(
    p: Plane, around: Callable[[Lister, datetime | None, str | None, int], Awaitable[ListPage]]
) -> list[int]:
    """Route the sim's `list_page` through `around`; return the sizes of the pages given."""
    sim = p.sim("private")
    real: Lister = sim.list_page
    sizes: list[int] = []

    async def paged(since: datetime | None, marker: str | None, limit: int) -> ListPage:
        page = await around(real, since, marker, limit)
        sizes.append(len(page.servers))
        return page

    sim.list_page = paged  # type: ignore[method-assign]
    return sizes


async def _job(p: Plane) -> Job:
    async with p.db.read() as s:
        job = await s.get(Job, "sync:private")
        assert job is not None
        return job


@pytest.mark.parametrize("deep", [1, 100])
async def test_a_pass_of_many_pages_adopts_collects_and_notices_what_a_single_page_would(
    db_url: str, tmp_path: Path, deep: int
) -> None:
    """Deep (every row read) and digest passes alike; out-of-band deletes on the first and
    the last pages, a stop, a leak, and (deep) a row to adopt."""
    p = await _plane(db_url, tmp_path, deep=deep)
    try:
        ids = await p.create_active(10, flavor="m1.tiny")
        rids = await _remote_ids(p, ids)
        sim = p.sim("private")
        p.clock.advance(5.0)
        assert await p.worker.sync.sync_cloud("private", force=True)  # builds the digest
        runs = (await _job(p)).runs
        gone = [ids[0], ids[9]]
        for sid in gone:
            assert await sim.delete_out_of_band(rids[ids.index(sid)])
        await sim.power_out_of_band(rids[4], PowerAction.STOP)
        leak = await sim.create_out_of_band(
            str(uuid.uuid4()), "stray", installation=await p.rt.installation_id()
        )
        if deep == 1:  # created, never recorded: adopted by its canopy id
            async with p.db.session() as s:
                await s.execute(
                    update(Server)
                    .where(Server.id == ids[6])
                    .values(remote_id=None, remote_recorded_at=None)
                )
        sizes = _wrap(p, lambda real, since, marker, n: real(since, marker, n))
        asked: list[str] = []
        real_get = sim.get

        async def get(remote_id: str) -> RemoteServer | None:
            asked.append(remote_id)
            return await real_get(remote_id)

        sim.get = get  # type: ignore[method-assign]
        p.clock.advance(60.0)
        assert await p.worker.sync.sync_cloud("private", force=True)
        assert len(sizes) >= 3 and max(sizes) <= PAGE
        assert sum(sizes) == 9  # 10, less 2 deleted, plus the leak
        for sid in gone:
            row = await p.service.get(p.ctx, sid)
            assert row.status == "ERROR" and "deleted outside canopy" in (row.fault_message or "")
        assert sorted(asked) == sorted(rids[ids.index(sid)] for sid in gone)  # asked once each
        assert (await p.service.get(p.ctx, ids[4])).status == "SHUTOFF"
        assert leak.remote_id not in {r.remote_id for r in await sim.all_servers()}
        if deep == 1:
            assert (await p.service.get(p.ctx, ids[6])).remote_id == rids[6]
        others = [sid for sid in ids if sid not in (*gone, ids[4])]
        assert [(await p.service.get(p.ctx, sid)).status for sid in others] == ["ACTIVE"] * 7
        job = await _job(p)
        assert job.runs == runs + 1 and job.last_error is None and job.claimed_by is None
    finally:
        await p.close()


async def test_a_server_that_moves_between_pages_is_not_taken_for_gone(
    db_url: str, tmp_path: Path
) -> None:
    """A real cloud is not a snapshot: a server may be on no page of a listing (it moved
    to a page already read) or on two. Neither is deleted, nor marked gone."""
    p = await _plane(db_url, tmp_path)
    try:
        ids = await p.create_active(7, flavor="m1.tiny")
        rids = await _remote_ids(p, ids)
        missed, twice, deleted = rids[5], rids[1], rids[3]
        assert await p.sim("private").delete_out_of_band(deleted)

        async def moving(real: Lister, since: datetime | None, m: str | None, n: int) -> ListPage:
            page = await real(since, m, n)
            servers = [r for r in page.servers if r.remote_id != missed]
            if m is not None:  # every page after the first shows `twice` again
                servers += [r for r in await p.sim("private").all_servers() if r.remote_id == twice]
            return ListPage(servers, page.next)

        sizes = _wrap(p, moving)
        p.clock.advance(5.0)
        runs = (await _job(p)).runs
        assert await p.worker.sync.sync_cloud("private", force=True)
        assert len(sizes) >= 2
        assert [(await p.service.get(p.ctx, sid)).status for sid in ids] == [
            "ERROR" if rid == deleted else "ACTIVE" for rid in rids
        ]
        alive = {r.remote_id for r in await p.sim("private").all_servers()}
        assert {missed, twice} <= alive
        assert (await _job(p)).runs == runs + 1
    finally:
        await p.close()


async def test_a_lease_lost_between_pages_stops_the_pass_and_records_nothing(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path)
    try:
        ids = await p.create_active(9, flavor="m1.tiny")
        rids = await _remote_ids(p, ids)
        p.clock.advance(5.0)
        assert await p.worker.sync.sync_cloud("private", force=True)
        before = await _job(p)
        last = (await p.sim("private").all_servers())[-1].remote_id  # on the last page
        await p.sim("private").power_out_of_band(last, PowerAction.STOP)

        async def stolen(real: Lister, since: datetime | None, m: str | None, n: int) -> ListPage:
            if m is not None and not taken:  # the worker stalls in its second page's call
                taken.append(True)
                p.clock.advance(p.settings.controllers.lease_seconds + 1)
                async with p.db.session() as s:
                    assert await lease_job(
                        s, name="sync:private", worker="other", now=p.clock.now(), lease_seconds=60
                    )
            return await real(since, m, n)

        taken: list[bool] = []
        sizes = _wrap(p, stolen)
        p.clock.advance(5.0)
        assert await p.worker.sync.sync_cloud("private", force=True)  # ran, and was abandoned
        assert sizes == [PAGE, PAGE]  # no third page asked for once the lease was gone
        job = await _job(p)
        assert job.claimed_by == "other"
        assert (job.runs, job.cursor, job.last_run_at) == (
            before.runs,
            before.cursor,
            before.last_run_at,
        )
        sid = ids[rids.index(last)]
        assert (await p.service.get(p.ctx, sid)).status == "ACTIVE"  # not seen stopped
        assert "private" not in p.worker.sync._digests  # maybe half-built: dropped
    finally:
        await p.close()


async def test_a_listing_that_fails_midway_leaves_the_cursor_where_it_was(
    db_url: str, tmp_path: Path
) -> None:
    p = await _plane(db_url, tmp_path, deep=100)
    try:
        ids = await p.create_active(9, flavor="m1.tiny")
        rids = await _remote_ids(p, ids)
        p.clock.advance(5.0)
        assert await p.worker.sync.sync_cloud("private", force=True)
        before = await _job(p)
        assert await p.sim("private").delete_out_of_band(rids[8])  # on the last page

        async def crashing(real: Lister, since: datetime | None, m: str | None, n: int) -> ListPage:
            if m is not None:
                raise RuntimeError("connection reset in the middle of the listing")
            return await real(since, m, n)

        sizes = _wrap(p, crashing)
        p.clock.advance(5.0)
        assert await p.worker.sync.sync_cloud("private", force=True)
        assert sizes == [PAGE]
        job = await _job(p)
        assert (job.runs, job.cursor) == (before.runs, before.cursor)
        assert job.last_error and "connection reset" in job.last_error
        assert job.claimed_by is None  # released until the interval at rest
        assert (await p.service.get(p.ctx, ids[8])).status == "ACTIVE"  # not judged yet
        assert "private" not in p.worker.sync._digests
        # The next pass lists it all again, and sees the delete.
        p.sim("private").list_page = _unwrapped(p)  # type: ignore[method-assign]
        p.clock.advance(10.0)
        assert await p.worker.sync.sync_cloud("private", force=True)
        assert (await p.service.get(p.ctx, ids[8])).status == "ERROR"
        assert (await _job(p)).runs == before.runs + 1
    finally:
        await p.close()


def _unwrapped(p: Plane) -> Lister:
    sim = p.sim("private")
    return type(sim).list_page.__get__(sim)


def _remote_servers_alive() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is RemoteServer)


async def test_a_full_pass_holds_one_page_of_listed_servers_at_a_time(
    db_url: str, tmp_path: Path
) -> None:
    """Counted honestly: every `RemoteServer` alive in the process, at each page's call."""
    page = 5
    p = await _plane(db_url, tmp_path, page=page)
    try:
        await p.create_active(40, flavor="m1.tiny")
        counts: list[tuple[int, int]] = []  # (before the call, after it)

        async def counted(real: Lister, since: datetime | None, m: str | None, n: int) -> ListPage:
            gc.collect()
            at_call = _remote_servers_alive()
            out = await real(since, m, n)
            counts.append((at_call, _remote_servers_alive()))
            return out

        sizes = _wrap(p, counted)
        p.clock.advance(5.0)
        gc.collect()
        baseline = _remote_servers_alive()  # anything the plane itself keeps
        assert await p.worker.sync.sync_cloud("private", force=True)
        assert sum(sizes) == 40 and len(sizes) == 9  # 8 full pages, and an empty last one
        assert max(before for before, _ in counts) <= baseline  # the last page let go
        assert max(after for _, after in counts) <= baseline + page
        gc.collect()
        assert _remote_servers_alive() <= baseline
    finally:
        await p.close()
