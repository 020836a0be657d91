"""`canopy cloud list` / `show` say which clouds drain and how many servers they still hold."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from canopy.cli.main import app
from canopy.domain.clock import FakeClock
from canopy.store.db import Database
from tests.store.helpers import server_row

ONLY_PRIVATE = '[[clouds]]\nname = "private"\n'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "250")


def canopy(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def add_server_on(data: Path, cloud: str) -> None:
    async def go() -> None:
        db = Database(f"sqlite+aiosqlite:///{data / 'canopy.db'}")
        async with db.session() as s:
            s.add(server_row(FakeClock().now(), cloud=cloud, phase="steady"))
        await db.dispose()

    asyncio.run(go())


def row_of(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if f" {name} " in line)


def test_a_cloud_left_out_of_the_config_is_listed_as_draining(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert canopy("db", "upgrade", "--data-dir", str(data)).exit_code == 0
    add_server_on(data, "public")
    add_server_on(data, "public")
    config = tmp_path / "only-private.toml"
    config.write_text(ONLY_PRIVATE)
    upgraded = canopy("db", "upgrade", "--config", str(config), "--data-dir", str(data))
    assert upgraded.exit_code == 0, upgraded.output
    assert "cloud public is draining: removed from the config, 2 server(s) left" in (
        upgraded.output.replace("\n", "")
    )

    r = canopy("cloud", "list", "--config", str(config), "--data-dir", str(data))
    assert r.exit_code == 0, r.output
    assert re.search(r"│ public\s+│ sim\s+│\s+1 │ draining \(2 left\)\s+│\s+2 │", r.output)
    assert re.search(r"│ private\s+│ sim\s+│\s+0 │ healthy", row_of(r.output, "private"))

    show = canopy("cloud", "show", "public", "--data-dir", str(data))
    assert re.search(r"│ state\s+│ draining\s+│", show.output), show.output


def test_a_drained_cloud_is_listed_as_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert canopy("db", "upgrade", "--data-dir", str(data)).exit_code == 0
    config = tmp_path / "only-private.toml"
    config.write_text(ONLY_PRIVATE)
    assert canopy("db", "upgrade", "--config", str(config), "--data-dir", str(data)).exit_code == 0
    r = canopy("cloud", "list", "--data-dir", str(data))
    assert "removed" in row_of(r.output, "public")
