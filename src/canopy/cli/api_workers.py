"""`canopy api --workers N`: N API processes on one port, on PostgreSQL only.

One process serves pages on one core; the API holds no state of its own between requests
(sessions, tokens, the login throttle and quota usage are rows), so more processes serve
more pages where the database takes the concurrent load. PostgreSQL does. SQLite has one
writer per file: API processes would queue on its lock (or fail with "database is
locked"), so N > 1 is refused there, with what to do instead.

The parent binds the port (a port in use stops the start before anything is written),
migrates and bootstraps once (`prepare`, as `canopy api` does), then starts N children
with the listening socket; the kernel spreads connections between them. Each child opens
its own pool of `[database] pool_size` connections. A signal to the parent (or Ctrl-C to
the group) stops every child, each finishing the requests it has in hand. A child that
dies is not restarted: the parent stops the others and exits with an error, for the
service manager (systemd, Kubernetes) to restart the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

from canopy import event_loop
from canopy.bootstrap import ADMIN_PASSWORD_ENV, clouds_yaml_path, prepare, write_clouds_yaml
from canopy.cli.common import console
from canopy.cli.listen import bound_port
from canopy.config import Settings
from canopy.domain.clock import SystemClock
from canopy.domain.errors import CanopyError
from canopy.store.db import Database
from canopy.store.wakes import wake_channel

log = logging.getLogger("canopy.serve")
STOP_SECONDS = 15.0  # how long children get to finish their requests at a stop


class WorkersRefused(CanopyError):
    """`--workers` asked for what this database cannot do."""


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse N < 1, and N > 1 on SQLite, saying what to do instead."""
    if workers < 1:
        raise WorkersRefused(f"--workers must be at least 1 (got {workers}).")
    if workers > 1 and settings.database_url.startswith("sqlite"):
        raise WorkersRefused(
            f"canopy api --workers {workers} needs PostgreSQL: SQLite has one writer per "
            "file, so several API processes would only queue on its lock. Set [database] url "
            "= 'postgresql+asyncpg://...' (or CANOPY_DATABASE__URL) to run several, or run "
            "one API process (--workers 1) on SQLite."
        )


async def serve_workers(settings: Settings, workers: int) -> None:
    """Prepare once, then run `workers` API processes on the API port until a signal."""
    from canopy.cli.serve import _banner, _bind

    check_workers(settings, workers)
    sockets = _bind(settings, api=True, worker=False)
    sock = sockets["api"]
    try:
        prepared = await prepare(
            settings,
            SystemClock(),
            admin=True,
            admin_password=os.environ.get(ADMIN_PASSWORD_ENV) or None,
        )
        await prepared.db.dispose()  # each child opens its own pool
        clouds_yaml = None
        admin = prepared.admin
        if admin is not None and admin.password is not None:
            clouds_yaml = write_clouds_yaml(settings, admin.password)
        elif clouds_yaml_path(settings).is_file():
            clouds_yaml = clouds_yaml_path(settings)
        spawn = multiprocessing.get_context("spawn")
        children = [
            spawn.Process(target=_child, args=(settings, sock), name=f"canopy-api-{i + 1}")
            for i in range(workers)
        ]
        for child in children:
            child.start()
        _banner(
            settings,
            api=True,
            worker=False,
            worker_id="",
            admin=admin,
            clouds_yaml=clouds_yaml,
            draining=prepared.draining,
            metrics_url=None,
        )
        console.print(
            f"  {workers} API processes on port {bound_port(sock)} "
            f"(pids {', '.join(str(c.pid) for c in children)})"
        )
        await _supervise(children)
    finally:
        sock.close()


async def _supervise(children: Sequence[BaseProcess]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    died: BaseProcess | None = None
    try:
        while not stop.is_set():
            died = next((c for c in children if not c.is_alive()), None)
            if died is not None:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
    finally:
        for c in children:
            if c.is_alive():
                c.terminate()  # SIGTERM: the child finishes its requests, then exits
        for c in children:
            await asyncio.to_thread(c.join, STOP_SECONDS)
            if c.is_alive():
                c.kill()
                await asyncio.to_thread(c.join)
    if died is not None and not stop.is_set():
        raise CanopyError(
            f"API process {died.name} (pid {died.pid}) exited with code {died.exitcode}; "
            "the others were stopped"
        )


def _child(settings: Settings, sock: socket.socket) -> None:
    """One API process (spawned: nothing of the parent's loop or pool comes along)."""
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(_serve_child(settings, sock), settings.event_loop)


async def _serve_child(settings: Settings, sock: socket.socket) -> None:
    from canopy.api.app import create_app
    from canopy.cli.serve import _server
    from canopy.gil import shorten_switches
    from canopy.heap import freeze_startup_heap, pace_collector

    db = Database(
        settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    # No worker in this process: the wake after a commit goes to the worker processes
    # through the database (store/wakes.py); their polls are there for a wake missed.
    app = create_app(
        settings=settings,
        db=db,
        clock=SystemClock(),
        wake=asyncio.Event(),
        wake_channel=wake_channel(db),
    )
    server = _server(app, forwarded_allow_ips=settings.api.forwarded_allow_ips)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    freeze_startup_heap()
    pace_collector()
    shorten_switches()
    try:
        await server.serve(sockets=[sock])
    finally:
        await db.dispose()
