"""Wakes across processes: a commit in one engine wakes a listener of another engine, on
SQLite (Unix datagram sockets beside the file) and PostgreSQL (NOTIFY/LISTEN). Each test
gives the listener and the sender their own `Database`, as two processes have."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from canopy.domain.wake import Wake
from canopy.store import wakes_unix
from canopy.store.db import Database
from canopy.store.wakes import decode, encode, socket_dir, wake_channel
from canopy.store.wakes_pg import PostgresWakes
from canopy.store.wakes_unix import UnixWakes

BOUND = 5.0  # generous: a wake arrives in milliseconds; a missed one would never arrive


def test_payload_names_the_loops_and_anything_odd_wakes_every_loop() -> None:
    assert decode(encode(["sync", "placement", "sync"])) == ("placement", "sync")
    assert decode(encode([])) == ()
    assert decode("placement,a b") == ()  # not a loop name: every loop
    assert encode(["x" * 2000]) == ""


def test_the_channel_follows_the_backend(tmp_path: Path) -> None:
    sqlite = wake_channel(Database(f"sqlite+aiosqlite:///{tmp_path}/canopy.db"))
    assert isinstance(sqlite, UnixWakes)
    assert sqlite.directory == socket_dir(tmp_path / "canopy.db")
    assert socket_dir(Path("/srv/canopy/canopy.db")) == Path("/srv/canopy/canopy.db-wake")
    assert socket_dir(Path("rel.db")) == Path.cwd() / "rel.db-wake"


def test_a_database_too_deep_for_a_socket_path_gets_a_private_directory_in_tmp(
    tmp_path: Path,
) -> None:
    """A data directory deeper than a socket path may be (107 bytes) must not leave the
    workers polling: every process of that database agrees on a directory in /tmp."""
    deep = tmp_path / ("d" * 90) / "canopy.db"
    where = socket_dir(deep)
    assert where.parent == Path(tempfile.gettempdir())
    assert where.name.startswith(f"canopy-wake-{os.geteuid()}-")
    assert where == socket_dir(deep)  # the same for the API and every worker
    assert where != socket_dir(tmp_path / ("e" * 90) / "canopy.db")
    assert len(os.fsencode(where)) + 30 <= 107


async def test_a_worker_of_a_deep_database_is_woken(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90) / "canopy.db"
    listener, sender = UnixWakes(socket_dir(deep)), UnixWakes(socket_dir(deep))
    wake, stop = Wake(), asyncio.Event()
    task = asyncio.create_task(listener.listen(wake, stop))
    try:
        await asyncio.wait_for(listener.listening.wait(), BOUND)
        sender.after_commit(["placement"])
        await asyncio.wait_for(wake.wait(), BOUND)
        assert wake.take() == ("placement",)
    finally:
        stop.set()
        await asyncio.wait_for(task, BOUND)
        sender.close()
        listener.close()
        shutil.rmtree(socket_dir(deep), ignore_errors=True)
    assert wake_channel(Database("sqlite+aiosqlite:///:memory:")) is None
    assert isinstance(wake_channel(Database("postgresql+asyncpg://u@h/d")), PostgresWakes)


@contextlib.asynccontextmanager
async def listening(
    channel: UnixWakes | PostgresWakes,
) -> AsyncIterator[tuple[Wake, asyncio.Task[None]]]:
    wake, stop = Wake(), asyncio.Event()
    task = asyncio.create_task(channel.listen(wake, stop))
    try:
        await asyncio.wait_for(channel.listening.wait(), BOUND)
        yield wake, task
    finally:
        stop.set()
        await asyncio.wait_for(task, BOUND)


async def send(db: Database, *loops: str, commit: bool = True) -> None:
    """What the API's write_session does: before the commit, then after it."""
    channel = wake_channel(db)
    assert channel is not None

    class Rollback(Exception):
        pass

    try:
        async with db.session() as s:
            await s.execute(text("SELECT 1"))
            await channel.before_commit(s, loops)
            if not commit:
                raise Rollback
    except Rollback:
        return
    channel.after_commit(loops)


async def woken(wake: Wake) -> tuple[str, ...]:
    await asyncio.wait_for(wake.wait(), BOUND)
    return wake.take()


async def test_a_commit_in_another_engine_wakes_the_loops_it_names(db: Database) -> None:
    channel = wake_channel(db)
    assert isinstance(channel, UnixWakes | PostgresWakes)
    api = Database(db.url)  # the API process's own engine
    try:
        async with listening(channel) as (wake, _):
            await send(api, "placement")
            assert await woken(wake) == ("placement",)
            await send(api)  # no name: every loop
            assert await woken(wake) == ()
    finally:
        await api.dispose()


async def test_a_rolled_back_write_wakes_no_one(db: Database) -> None:
    channel = wake_channel(db)
    assert isinstance(channel, UnixWakes | PostgresWakes)
    api = Database(db.url)
    try:
        async with listening(channel) as (wake, _):
            await send(api, "placement", commit=False)
            await send(api, "sync")
            # Delivered in order: had the rolled-back one gone out, it would be here too.
            assert await woken(wake) == ("sync",)
    finally:
        await api.dispose()


async def test_postgres_listener_reconnects_and_then_wakes_every_loop_once(pg_url: str) -> None:
    db, api = Database(pg_url), Database(pg_url)
    channel = wake_channel(db)
    assert isinstance(channel, PostgresWakes)
    try:
        async with listening(channel) as (wake, _):
            async with api.engine.connect() as conn:
                killed = await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                    )
                )
                assert killed.scalars().all() == [True]
            for _ in range(int(BOUND / 0.05)):  # real reconnect, real backoff
                if channel.connects >= 2 and channel.listening.is_set():
                    break
                await asyncio.sleep(0.05)
            assert channel.connects == 2 and channel.listening.is_set()
            assert await woken(wake) == ()  # what was sent while away: every loop looks
            await send(api, "placement")
            assert await woken(wake) == ("placement",)
    finally:
        await api.dispose()
        await db.dispose()


async def test_a_dead_workers_socket_is_removed_by_the_next_send(tmp_path: Path) -> None:
    channel = UnixWakes(tmp_path / "canopy.db-wake")
    channel.directory.mkdir(mode=0o700)  # as a worker makes it
    stale = channel.directory / "123-dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(stale))
    assert stale.exists()
    channel.after_commit(["placement"])
    assert not stale.exists()
    channel.close()


async def test_a_removed_socket_is_bound_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wakes_unix, "CHECK_SECONDS", 0.05)
    channel = UnixWakes(tmp_path / "canopy.db-wake")
    sender = UnixWakes(channel.directory)
    async with listening(channel) as (wake, _):
        first = channel.path
        assert first is not None and oct(os.stat(channel.directory).st_mode & 0o777) == "0o700"
        os.unlink(first)  # a data directory cleaned under the worker
        for _ in range(int(BOUND / 0.05)):
            if channel.path not in (None, first):
                break
            await asyncio.sleep(0.05)
        assert channel.path not in (None, first)
        assert await woken(wake) == ()  # wakes sent while it was missing
        sender.after_commit(["placement"])
        assert await woken(wake) == ("placement",)
    assert channel.path is None and os.listdir(channel.directory) == []
    sender.close()


async def test_without_a_place_for_its_socket_the_worker_keeps_polling(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)  # longer than a Unix socket path may be
    channel = UnixWakes(deep / "canopy.db-wake")
    wake, stop = Wake(), asyncio.Event()
    task = asyncio.create_task(channel.listen(wake, stop))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not task.done() and not channel.listening.is_set()
    stop.set()
    await asyncio.wait_for(task, BOUND)


def test_a_send_never_raises_when_no_socket_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """after_commit runs after the write committed (api/deps.py write_session): if it
    raised, the client would get a 500 for a write that happened, and might repeat it."""
    directory = tmp_path / "db-wake"
    directory.mkdir(mode=0o700)
    (directory / "123-abc.sock").touch()  # some worker's socket (any entry is enough)

    def no_more_files(*_a: object, **_k: object) -> socket.socket:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(wakes_unix.socket, "socket", no_more_files)
    UnixWakes(directory).after_commit(["placement"])  # must not raise


def test_a_wake_directory_others_may_use_is_refused(tmp_path: Path) -> None:
    """`mkdir(exist_ok=True)` keeps a directory that is already there: one made first by
    another local user beside a database in a shared directory (/tmp), world-writable, would
    let that user replace the workers' sockets, plant symlinks the API sends to, or flood
    the workers. The worker binds only in its own directory with mode 0700."""
    directory = tmp_path / "db-wake"
    directory.mkdir()
    os.chmod(directory, 0o777)
    wakes = UnixWakes(directory)
    with pytest.raises(wakes_unix.UntrustedDirectory, match="mode 777"):
        wakes._bind()
    assert os.listdir(directory) == []  # nothing bound there
    os.chmod(directory, 0o700)
    sock, path = wakes._bind()  # its own, private: fine
    sock.close()
    os.unlink(path)


def test_a_wake_directory_that_is_a_symlink_or_not_ours_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    (tmp_path / "db-wake").symlink_to(real)
    with pytest.raises(wakes_unix.UntrustedDirectory, match="not a directory"):
        UnixWakes(tmp_path / "db-wake")._bind()
    if os.geteuid() != 0:
        return  # only root can give a directory away to test the owner
    os.chown(real, 65534, 65534)
    with pytest.raises(wakes_unix.UntrustedDirectory, match="owned by uid 65534"):
        UnixWakes(real)._bind()
    assert os.listdir(real) == []


async def test_a_worker_refusing_its_wake_directory_says_so_once_and_keeps_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(wakes_unix, "RETRY_SECONDS", 0.01)
    directory = tmp_path / "db-wake"
    directory.mkdir(mode=0o777)
    os.chmod(directory, 0o777)
    channel = UnixWakes(directory)
    wake, stop = Wake(), asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="canopy.wakes"):
        task = asyncio.create_task(channel.listen(wake, stop))
        await asyncio.sleep(0.1)  # several tries
        assert not task.done() and not channel.listening.is_set()
        stop.set()
        await asyncio.wait_for(task, BOUND)
    said = [r.getMessage() for r in caplog.records if r.name == "canopy.wakes"]
    assert len(said) == 1 and "mode 777" in said[0], said
    assert os.listdir(directory) == []


async def test_a_send_goes_only_to_this_users_sockets_never_through_a_symlink(
    tmp_path: Path,
) -> None:
    channel = UnixWakes(tmp_path / "canopy.db-wake")
    sender = UnixWakes(channel.directory)
    # A socket elsewhere that a planted symlink in the directory points at.
    target = tmp_path / "target.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as planted:
        planted.bind(str(target))
        planted.setblocking(False)
        async with listening(channel) as (wake, _):
            (channel.directory / "1-planted.sock").symlink_to(target)
            sender.after_commit(["placement"])
            assert await woken(wake) == ("placement",)  # the worker's own socket: sent
            with pytest.raises(BlockingIOError):
                planted.recv(4096)  # never sent through the symlink
            assert (channel.directory / "1-planted.sock").is_symlink()  # nor removed
            os.unlink(channel.directory / "1-planted.sock")
    sender.close()


async def test_a_directory_made_loose_later_gets_no_wakes(tmp_path: Path) -> None:
    channel = UnixWakes(tmp_path / "canopy.db-wake")
    sender = UnixWakes(channel.directory)
    async with listening(channel) as (wake, _):
        os.chmod(channel.directory, 0o777)
        sender.after_commit(["placement"])
        await asyncio.sleep(0.05)
        assert not wake.is_set()
        os.chmod(channel.directory, 0o700)
        sender.after_commit(["placement"])
        assert await woken(wake) == ("placement",)
    sender.close()
