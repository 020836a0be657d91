"""The `canopy` command."""

from __future__ import annotations

from typing import Annotated

import typer

from canopy import __version__
from canopy.cli import cloud, cloud_edit, db, identity, image, lease, subscription
from canopy.cli.common import ConfigOpt, DataDirOpt, run, settings_from, setup_logging

app = typer.Typer(
    help="Canopy: one OpenStack-compatible control plane over many clouds.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
cloud_edit.register(cloud.app)
app.add_typer(cloud.app, name="cloud")
app.add_typer(identity.project_app, name="project")
app.add_typer(identity.user_app, name="user")
app.add_typer(image.app, name="image")
app.add_typer(lease.app, name="lease")
app.add_typer(subscription.app, name="subscription")

LogOpt = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING")]


@app.command()
def up(
    config: ConfigOpt = None, data_dir: DataDirOpt = None, log_level: LogOpt = "WARNING"
) -> None:
    """Run the API and the controllers in one process (SQLite by default)."""
    from canopy.cli.serve import serve

    setup_logging(log_level)
    settings = settings_from(config, data_dir)
    run(serve(settings, api=True, worker=True), settings.event_loop)


@app.command()
def api(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    log_level: LogOpt = "WARNING",
    workers: Annotated[
        int, typer.Option("--workers", help="API processes on the port (>1: PostgreSQL only)")
    ] = 1,
) -> None:
    """Run only the API (several processes with --workers N, on PostgreSQL)."""
    from canopy.cli.serve import serve

    setup_logging(log_level)
    settings = settings_from(config, data_dir)
    if workers == 1:
        run(serve(settings, api=True, worker=False), settings.event_loop)
        return
    from canopy.cli.api_workers import serve_workers

    run(serve_workers(settings, workers), settings.event_loop)


@app.command()
def worker(
    config: ConfigOpt = None, data_dir: DataDirOpt = None, log_level: LogOpt = "INFO"
) -> None:
    """Run only the controllers; as many workers as you like share the work through leases."""
    from canopy.cli.serve import serve

    setup_logging(log_level)
    settings = settings_from(config, data_dir)
    run(serve(settings, api=False, worker=True), settings.event_loop)


@app.command()
def demo(
    servers: Annotated[int, typer.Option(help="size of the load spike")] = 20,
    flavor: Annotated[str, typer.Option(help="flavor of every server")] = "m1.medium",
    keep: Annotated[bool, typer.Option(help="keep the servers afterwards")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """A load spike that fills `private` and bursts to `public`, shown live."""
    from canopy.cli.demo import run_demo

    setup_logging("ERROR")
    # The product on its default loop (canopy/event_loop.py), as `canopy up` runs it.
    run(run_demo(servers=servers, flavor=flavor, keep=keep, data_dir=data_dir), "auto")


@app.command()
def version() -> None:
    """Print canopy's version."""
    typer.echo(__version__)


def main() -> None:
    app()
