"""`canopy up`, `canopy api` and `canopy worker`: the long-running processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from rich.markup import escape

from canopy.bootstrap import (
    ADMIN_PASSWORD_ENV,
    AdminBootstrap,
    clouds_yaml_path,
    ensure_admin,
    open_database,
    seed,
    write_clouds_yaml,
)
from canopy.cli.common import console
from canopy.config import Settings
from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.domain.clock import SystemClock
from canopy.providers.registry import build_drivers


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process stops API and worker together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Event loops without signal support (Windows) raise NotImplementedError; there
        # Ctrl-C still ends the process through KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def serve(settings: Settings, *, api: bool, worker: bool, banner: bool = True) -> None:
    """Run the API, the controllers, or both in this process until a signal arrives."""
    clock = SystemClock()
    db = await open_database(settings)
    await seed(db, settings, clock)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    drivers = build_drivers(settings, clock) if worker else {}
    rt = Runtime(db=db, settings=settings, drivers=drivers, clock=clock)
    if worker:
        tasks.append(asyncio.create_task(Worker(rt).run(stop)))
    server: uvicorn.Server | None = None
    admin: AdminBootstrap | None = None
    clouds_yaml: Path | None = None
    if api:
        from canopy.api.app import create_app

        admin = await ensure_admin(
            db,
            clock,
            os.environ.get(ADMIN_PASSWORD_ENV) or None,
            project_name=settings.identity.admin_project_name,
        )
        if admin.password is not None:
            clouds_yaml = write_clouds_yaml(settings, admin.password)
        elif clouds_yaml_path(settings).is_file():
            clouds_yaml = clouds_yaml_path(settings)

        app = create_app(settings=settings, db=db, clock=clock, wake=rt.wake)
        config = uvicorn.Config(
            app,
            host=settings.api.host,
            port=settings.api.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Above the clients' poll intervals (`openstack ... --wait` polls every 5 s, which
            # is uvicorn's default here): a request that meets the idle close is reset.
            timeout_keep_alive=75,
        )
        server = _Server(config)
        tasks.append(asyncio.create_task(server.serve()))
    _stop_on_signals(stop)
    if banner:
        _banner(
            settings,
            api=api,
            worker=worker,
            worker_id=rt.worker_id,
            admin=admin,
            clouds_yaml=clouds_yaml,
        )
    try:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not waiter and t.exception():
                raise t.exception()  # type: ignore[misc]
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(t, timeout=10)
        for d in drivers.values():
            await d.close()
        await db.dispose()


def _banner(
    settings: Settings,
    *,
    api: bool,
    worker: bool,
    worker_id: str,
    admin: AdminBootstrap | None = None,
    clouds_yaml: Path | None = None,
) -> None:
    roles = " + ".join(r for r, on in (("API", api), ("controllers", worker)) if on)
    console.print(f"[bold green]canopy[/] is running ({roles})")
    db_where = settings.database_url.split("@")[-1]
    console.print(f"  database   {db_where}")
    for c in settings.clouds:
        console.print(f"  cloud      [bold]{c.name}[/] driver={c.driver} tier={c.tier}")
    if api:
        url = settings.public_url
        console.print(f"  admin API  {url}/canopy/v1/clouds   (docs at {url}/docs)")
        console.print(f"  health     {url}/healthz   metrics {url}/metrics")
        if admin is not None:
            _admin_banner(settings, admin, clouds_yaml)
    if worker:
        console.print(f"  worker id  {worker_id}")
    console.print("[dim]Ctrl-C stops it; a restart picks up where it left off.[/]")


def _admin_banner(settings: Settings, admin: AdminBootstrap, clouds_yaml: Path | None) -> None:
    url = settings.public_url
    console.print(
        f"  identity   {url}/identity/v3   (Keystone v3; compute and image in its catalog)",
        soft_wrap=True,
    )
    if admin.generated:
        console.print(
            f"  admin      user [bold]admin[/], project admin, password [bold]{admin.password}[/]",
            soft_wrap=True,
        )
        console.print(
            "             [yellow]this generated password is shown only now and will not be "
            f"shown again[/]; set {ADMIN_PASSWORD_ENV} to choose it",
            soft_wrap=True,
        )
    elif admin.reset:
        console.print(f"  admin      user admin: password reset from {ADMIN_PASSWORD_ENV}")
    elif admin.password is not None:
        console.print(
            f"  admin      user admin, project admin (password from {ADMIN_PASSWORD_ENV})"
        )
    else:
        console.print(
            "  admin      user admin, project admin (password set at first start; "
            f"set {ADMIN_PASSWORD_ENV} to reset it)",
            soft_wrap=True,
        )
    if clouds_yaml is not None:
        console.print(f"  clouds.yaml {escape(str(clouds_yaml))}  (mode 0600)", soft_wrap=True)
        console.print(
            f"             export OS_CLIENT_CONFIG_FILE={escape(str(clouds_yaml))} OS_CLOUD=canopy",
            soft_wrap=True,
        )
        console.print("             openstack server list")
