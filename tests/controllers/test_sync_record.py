"""A sync pass at rest: a lease and a record, nothing else; the record is its holder's only;
a job another worker ran meanwhile is not run twice."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.controllers.runtime import Runtime
from canopy.controllers.sync import SyncController
from canopy.domain.states import PowerAction
from canopy.providers.base import ListPage
from canopy.store.leases import lease_job
from canopy.store.models import Cloud, Job

from .harness import PRIVATE, Plane, make_plane, statements

NAME = "sync:private"


async def _job(p: Plane) -> Job:
    async with p.db.read() as s:
        job = await s.get(Job, NAME)
    assert job is not None
    return job


async def _settled(db_url: str, tmp_path: Path) -> Plane:
    """A plane with two steady servers, and sync's first (full) passes over them done."""
    p = await make_plane(db_url, tmp_path, toml=PRIVATE)
    await p.create_active(2)
    for _ in range(2):
        p.clock.advance(p.settings.controllers.sync_seconds)
        assert await p.worker.sync.sync_cloud("private")
    return p


def _kinds(seen: list[str]) -> list[str]:
    """Each statement's verb and table, transaction control left out."""
    out = []
    for sql in seen:
        words = sql.split()
        if words[0] in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
            continue
        table = words[words.index("FROM") + 1] if words[0] == "SELECT" else words[1]
        out.append(f"{words[0]} {table}")
    return out


async def test_a_pass_at_rest_is_a_lease_and_a_record(db_url: str, tmp_path: Path) -> None:
    p = await _settled(db_url, tmp_path)
    try:
        before = await _job(p)
        p.clock.advance(p.settings.controllers.sync_seconds)
        with statements(p.db) as seen:
            assert await p.worker.sync.sync_cloud("private")
        # No read of the job before its lease (this worker wrote its next run), no check
        # of the lease before an empty listing, no read of the cloud's rows but the
        # converging probe; the record is two UPDATEs, the job's checking the holder.
        assert _kinds(seen) == [
            "SELECT jobs",
            "UPDATE jobs",
            "SELECT servers",
            "UPDATE jobs",
            "UPDATE clouds",
        ], seen
        job = await _job(p)
        assert job.runs == before.runs + 1
        assert job.claimed_by is None and job.last_run_at == p.clock.now()
        assert job.next_run_at is not None and job.next_run_at > p.clock.now()
        async with p.db.read() as s:
            cloud = await s.get(Cloud, "private")
        assert cloud is not None and cloud.healthy and cloud.last_ok_at == p.clock.now()

        # Something changes: the listing has it, and the pass reads what it compares.
        rid = (await p.sim("private").all_servers())[0].remote_id
        await p.sim("private").power_out_of_band(rid, PowerAction.STOP)
        p.clock.advance(p.settings.controllers.sync_seconds)
        with statements(p.db) as seen:
            assert await p.worker.sync.sync_cloud("private")
        assert "UPDATE servers" in _kinds(seen)
    finally:
        await p.close()


async def test_a_pass_whose_job_was_taken_records_nothing(
    db_url: str, tmp_path: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    p = await _settled(db_url, tmp_path)
    try:
        before = await _job(p)
        async with p.db.read() as s:
            ok_before = (await s.get(Cloud, "private")).last_ok_at  # type: ignore[union-attr]
        driver = p.sim("private")
        real = driver.list_page

        async def stalled(*args: Any) -> ListPage:
            # The worker stalls in its (only) call past its lease; another worker takes it.
            p.clock.advance(p.settings.controllers.lease_seconds + 1)
            async with p.db.session() as s:
                assert await lease_job(
                    s, name=NAME, worker="other", now=p.clock.now(), lease_seconds=60, force=True
                )
            return await real(*args)

        monkeypatch.setattr(driver, "list_page", stalled)
        p.clock.advance(p.settings.controllers.sync_seconds)
        with caplog.at_level(logging.WARNING, logger="canopy.sync"):
            assert await p.worker.sync.sync_cloud("private")  # ran, and was abandoned
        # By the record's own check (the listing was empty: nothing else looked).
        assert "pass abandoned: job sync:private: no longer held by" in caplog.text
        job = await _job(p)
        assert job.claimed_by == "other"
        assert (job.runs, job.cursor, job.last_run_at, job.next_run_at) == (
            before.runs,
            before.cursor,
            before.last_run_at,
            before.next_run_at,
        )
        async with p.db.read() as s:
            assert (await s.get(Cloud, "private")).last_ok_at == ok_before  # type: ignore[union-attr]
    finally:
        await p.close()


async def test_a_job_another_worker_ran_meanwhile_is_not_run_again(
    db_url: str, tmp_path: Path
) -> None:
    p = await _settled(db_url, tmp_path)
    try:
        other_rt = Runtime(
            db=p.db, settings=p.settings, drivers=p.rt.drivers, clock=p.clock, worker_id="other"
        )
        other = SyncController(other_rt)
        p.clock.advance(p.settings.controllers.sync_seconds)
        assert await other.sync_cloud("private")  # due by its read: the other worker ran it
        runs = (await _job(p)).runs
        # This worker's memory (what it recorded) says due; the lease finds it is not.
        assert not await p.worker.sync.sync_cloud("private")
        assert (await _job(p)).runs == runs
        # It reads the job then (no write transaction) and learns its next run...
        with statements(p.db) as seen:
            assert not await p.worker.sync.sync_cloud("private")
        assert _kinds(seen) == ["SELECT jobs"], seen
        # ...so it tries no more before that.
        with statements(p.db) as seen:
            assert not await p.worker.sync.sync_cloud("private")
        assert seen == []
        p.clock.advance(p.settings.controllers.sync_seconds)
        with statements(p.db) as seen:
            assert await p.worker.sync.sync_cloud("private")
        assert _kinds(seen)[:2] == ["SELECT jobs", "SELECT jobs"], seen  # the read, the lease
        async with p.db.read() as s:
            job = (await s.execute(select(Job).where(Job.name == NAME))).scalar_one()
        assert job.runs == runs + 1 and job.claimed_by is None
    finally:
        await p.close()


async def test_a_listing_of_changes_that_begins_with_an_empty_page_is_still_compared(
    db_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """A cloud may answer a page with nothing and a marker (EC2 does; a filtered page can
    come back empty): the under-way rows are read for the first page that lists
    something, and what it lists is observed."""
    p = await _settled(db_url, tmp_path)
    try:
        driver = p.sim("private")
        real = driver.list_page

        async def empty_first(since: Any, marker: str | None, limit: int) -> ListPage:
            if marker is None:
                return ListPage(servers=[], next="start")
            return await real(since, None if marker == "start" else marker, limit)

        monkeypatch.setattr(driver, "list_page", empty_first)
        stopped = (await driver.all_servers())[0]
        await driver.power_out_of_band(stopped.remote_id, PowerAction.STOP)
        p.clock.advance(p.settings.controllers.sync_seconds)
        with statements(p.db) as seen:
            assert await p.worker.sync.sync_cloud("private")
        assert "UPDATE servers" in _kinds(seen), seen
        assert any(s.startswith("SELECT servers.remote_id FROM servers") for s in seen), seen
        assert stopped.canopy_id is not None
        assert (await p.service.get(p.ctx, stopped.canopy_id)).status == "SHUTOFF"
    finally:
        await p.close()
