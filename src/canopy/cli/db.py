"""`canopy db`: schema migrations."""

from __future__ import annotations

import typer

from canopy.bootstrap import open_database, seed
from canopy.cli.common import ConfigOpt, DataDirOpt, console, run, settings_from
from canopy.domain.clock import SystemClock
from canopy.store.migrate import current_revision

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Migrate the database to the newest schema and load the configured clouds."""
    settings = settings_from(config, data_dir)

    async def _go() -> str | None:
        db = await open_database(settings)
        await seed(db, settings, SystemClock())
        rev = await current_revision(db)
        await db.dispose()
        return rev

    rev = run(_go())
    console.print(f"database at revision [bold]{rev}[/] ({settings.database_url.split('@')[-1]})")
