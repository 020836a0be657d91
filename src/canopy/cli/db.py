"""`canopy db`: the schema, and reconciling the config into it."""

from __future__ import annotations

import typer

from canopy.bootstrap import prepare
from canopy.cli.common import ConfigOpt, DataDirOpt, console, run, settings_from
from canopy.domain.clock import SystemClock
from canopy.reconcile import Draining
from canopy.store.migrate import current_revision

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Migrate the database to the newest schema and load the configured clouds.

    Safe beside running processes: migrating and reconciling take the same lock as a start.
    """
    settings = settings_from(config, data_dir)

    async def _go() -> tuple[str | None, list[Draining]]:
        prepared = await prepare(settings, SystemClock())
        try:
            return await current_revision(prepared.db), prepared.draining
        finally:
            await prepared.db.dispose()

    rev, draining = run(_go())
    console.print(f"database at revision [bold]{rev}[/] ({settings.database_url.split('@')[-1]})")
    for d in draining:
        console.print(
            f"cloud [bold]{d.name}[/] is [yellow]draining[/]: removed from the config, "
            f"{d.servers} server(s) left; a worker still deletes them",
            soft_wrap=True,
        )
