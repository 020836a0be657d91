"""A command that changes rows wakes the running workers as the API's change does: a
listening worker (its wake channel, in this process) is woken once the command has
committed, and a command that fails wakes no one. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from canopy.cli.main import app
from canopy.store.db import Database
from canopy.store.wakes import wake_channel
from canopy.store.wakes_pg import PostgresWakes
from canopy.store.wakes_unix import UnixWakes
from tests.store.test_wakes import listening, send, woken

from .test_cloud_edit import clean_env  # noqa: F401  (autouse: no CANOPY_* from outside)
from .test_concurrent_start import empty_pg  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A config file for a migrated database, and that database's URL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'canopy.db'}"
    else:
        url = request.getfixturevalue("empty_pg")
    cfg = tmp_path / "canopy.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n[database]\nurl = "{url}"\n')
    r = _canopy("db", "upgrade", "--config", str(cfg))
    assert r.exit_code == 0, r.output
    return cfg, url


def _canopy(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


async def test_a_cloud_edit_from_the_command_line_wakes_the_workers(
    config: tuple[Path, str],
) -> None:
    cfg, url = config
    c = ["--config", str(cfg)]
    channel = wake_channel(Database(url))  # what a running worker listens on
    assert isinstance(channel, UnixWakes | PostgresWakes)
    async with listening(channel) as (wake, _):
        add = ("cloud", "add", "extra", "--driver", "sim", "--tier", "2", *c)
        r = await asyncio.to_thread(_canopy, *add)  # the command runs its own event loop
        assert r.exit_code == 0, r.output
        assert await woken(wake) == ()  # as the API's cloud edits: every loop
        r = await asyncio.to_thread(_canopy, *add)  # refused: it exists; nothing committed
        assert r.exit_code != 0
        api = Database(url)
        try:
            await send(api, "placement")  # after it, in order: had it woken, this is ()
            assert await woken(wake) == ("placement",)
        finally:
            await api.dispose()
        r = await asyncio.to_thread(_canopy, "cloud", "disable", "extra", *c)
        assert r.exit_code == 0, r.output
        assert await woken(wake) == ()
    channel.close()
