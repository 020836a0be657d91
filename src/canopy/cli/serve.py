"""`canopy up`, `canopy api` and `canopy worker`: the long-running processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from rich.markup import escape
from starlette.types import ASGIApp

from canopy.bootstrap import (
    ADMIN_PASSWORD_ENV,
    AdminBootstrap,
    clouds_yaml_path,
    prepare,
    write_clouds_yaml,
)
from canopy.cli.common import console, err_console
from canopy.cli.listen import Listener, bind, bound_port
from canopy.config import CloudSettings, Settings
from canopy.controllers.runtime import Runtime
from canopy.controllers.worker import Worker
from canopy.domain.clock import SystemClock
from canopy.gil import shorten_switches
from canopy.heap import freeze_startup_heap, pace_collector
from canopy.providers.base import Compute
from canopy.providers.registry import build_drivers, draining_settings
from canopy.reconcile import Draining
from canopy.store.wakes import wake_channel

log = logging.getLogger("canopy.serve")
HTTP_PARSER = "h11"  # see `_server`


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
    """Run the API, the controllers, or both in this process until a signal arrives.

    Ports are bound first (a port in use stops the start before anything is written);
    then `prepare` migrates, reconciles the config and bootstraps the admin, once, under
    the schema lock; then the drivers are built, for the configured clouds and for the
    clouds that are draining.
    """
    for warning in settings.warnings():
        log.warning("%s", warning)
        err_console.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    sockets = _bind(settings, api=api, worker=worker)
    clock = SystemClock()
    try:
        prepared = await prepare(
            settings, clock, admin=api, admin_password=os.environ.get(ADMIN_PASSWORD_ENV) or None
        )
    except BaseException:
        for sock in sockets.values():
            sock.close()
        raise
    db = prepared.db
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    servers: list[uvicorn.Server] = []
    drivers: dict[str, Compute] = {}
    draining: list[CloudSettings] = []
    if worker:
        draining = draining_settings(settings, {d.name: d.settings for d in prepared.draining})
        drivers = build_drivers(settings, clock, draining)
    # The runtime drives the configured clouds and the draining ones (whose concurrency
    # limits come from the settings their rows kept).
    rt_settings = settings.model_copy(update={"clouds": [*settings.clouds, *draining]})
    rt = Runtime(db=db, settings=rt_settings, drivers=drivers, clock=clock)
    channel = wake_channel(db)
    rt.channel = channel if worker else None  # the worker tells the others through it
    if worker:
        tasks.append(asyncio.create_task(Worker(rt).run(stop)))
        if channel is not None:
            # The API processes elsewhere (`canopy api`) wake this worker through it.
            tasks.append(asyncio.create_task(channel.listen(rt.wake, stop)))
    clouds_yaml: Path | None = None
    if api:
        from canopy.api.app import create_app

        admin = prepared.admin
        if admin is not None and admin.password is not None:
            clouds_yaml = write_clouds_yaml(settings, admin.password)
        elif clouds_yaml_path(settings).is_file():
            clouds_yaml = clouds_yaml_path(settings)
        # With the worker here, the wake stays in this process (`rt.wake`); without it,
        # it goes to the worker processes through the database's channel.
        app = create_app(
            settings=settings,
            db=db,
            clock=clock,
            wake=rt.wake,
            wake_channel=None if worker else channel,
        )
        servers.append(_server(app, forwarded_allow_ips=settings.api.forwarded_allow_ips))
        tasks.append(asyncio.create_task(servers[-1].serve(sockets=[sockets["api"]])))
    metrics_url = None
    if "metrics" in sockets:
        from canopy.api.metrics import metrics_app

        sock = sockets["metrics"]
        metrics_url = f"http://{_host_of(settings.worker.metrics_host)}:{bound_port(sock)}/metrics"
        servers.append(_server(metrics_app(db, settings)))
        tasks.append(asyncio.create_task(servers[-1].serve(sockets=[sock])))
    _stop_on_signals(stop)
    # Everything start-up made (modules, the app, mappers, drivers) lives as long as the
    # process: out of the collector's full scans from here on (canopy/heap.py).
    freeze_startup_heap()
    pace_collector()
    shorten_switches()  # the loop waits less for the GIL behind other threads (canopy/gil.py)
    if banner:
        _banner(
            settings,
            api=api,
            worker=worker,
            worker_id=rt.worker_id,
            admin=prepared.admin,
            clouds_yaml=clouds_yaml,
            draining=prepared.draining,
            metrics_url=metrics_url,
        )
    try:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not waiter and t.exception():
                raise t.exception()  # type: ignore[misc]
    finally:
        stop.set()
        for server in servers:
            server.should_exit = True
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(t, timeout=10)
        for d in drivers.values():
            await d.close()
        for sock in sockets.values():
            sock.close()
        await db.dispose()


def _bind(settings: Settings, *, api: bool, worker: bool) -> dict[str, socket.socket]:
    """The sockets this process will serve on, bound now: the API's, and for a worker
    without the API, the one for /metrics (unless [worker] metrics = false)."""
    wanted: dict[str, Listener] = {}
    if api:
        wanted["api"] = Listener(
            "the API",
            settings.api.host,
            settings.api.port,
            port_setting="[api] port (or CANOPY_API_PORT)",
            host_setting="[api] host (or CANOPY_API_HOST)",
        )
    elif worker and settings.worker.metrics:
        wanted["metrics"] = Listener(
            "the worker's /metrics",
            settings.worker.metrics_host,
            settings.worker.metrics_port,
            port_setting="[worker] metrics_port (or CANOPY_WORKER__METRICS_PORT; 0 = any)",
            host_setting="[worker] metrics_host (or CANOPY_WORKER__METRICS_HOST)",
        )
    bound: dict[str, socket.socket] = {}
    try:
        for name, listener in wanted.items():
            bound[name] = bind(listener)
    except BaseException:
        for sock in bound.values():
            sock.close()
        raise
    return bound


def _server(app: ASGIApp, *, forwarded_allow_ips: list[str] | None = None) -> uvicorn.Server:
    """uvicorn for `app`. X-Forwarded-For is believed only from `forwarded_allow_ips`
    (`[api] forwarded_allow_ips`); without any, proxy headers are ignored, whatever
    uvicorn's own default (127.0.0.1) or FORWARDED_ALLOW_IPS say, so a local client cannot
    choose the address the login throttle counts it by.

    HTTP is parsed by h11, even where httptools is installed (uvicorn's "auto" would take
    it): h11 refuses a header block it cannot parse within 16 KiB past what one read
    brings, and reads one pipelined request at a time, where uvicorn's httptools protocol
    buffers headers, request lines and pipelined requests without a bound
    (docs/architecture.md, "The serving processes run on uvloop; HTTP stays with h11")."""
    trusted = list(forwarded_allow_ips or [])
    config = uvicorn.Config(
        app,
        http=HTTP_PARSER,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Above the clients' poll intervals (`openstack ... --wait` polls every 5 s, which
        # is uvicorn's default here): a request that meets the idle close is reset.
        timeout_keep_alive=75,
    )
    return _Server(config)


def _host_of(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _banner(
    settings: Settings,
    *,
    api: bool,
    worker: bool,
    worker_id: str,
    admin: AdminBootstrap | None = None,
    clouds_yaml: Path | None = None,
    draining: list[Draining] | None = None,
    metrics_url: str | None = None,
) -> None:
    roles = " + ".join(r for r, on in (("API", api), ("controllers", worker)) if on)
    console.print(f"[bold green]canopy[/] is running ({roles})")
    db_where = settings.database_url.split("@")[-1]
    console.print(f"  database   {db_where}")
    for c in settings.clouds:
        off = "" if c.enabled else "  [yellow]disabled[/]"
        console.print(f"  cloud      [bold]{c.name}[/] driver={c.driver} tier={c.tier}{off}")
    for d in draining or []:
        console.print(
            f"  cloud      [bold]{d.name}[/] [yellow]draining[/]: removed from the config, "
            f"{d.servers} server(s) left to delete",
            soft_wrap=True,
        )
    if api:
        url = settings.public_url
        console.print(f"  admin API  {url}/canopy/v1/clouds   (docs at {url}/docs)")
        console.print(f"  health     {url}/healthz   metrics {url}/metrics")
        if admin is not None:
            _admin_banner(settings, admin, clouds_yaml)
    if worker:
        console.print(f"  worker id  {worker_id}")
    if metrics_url is not None:
        console.print(f"  metrics    {metrics_url}")
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
