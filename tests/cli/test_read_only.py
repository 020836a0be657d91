"""Commands that only read never write: not the config's clouds, not the schema, not a file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from canopy.cli.main import app
from canopy.store.db import Database
from canopy.store.migrate import head_revision, upgrade

from .dump import dump

READ_COMMANDS = (
    ("cloud", "list"),
    ("cloud", "show", "private"),
    ("project", "list"),
    ("user", "list"),
    ("image", "list"),
)

OTHER_CONFIG = """
[[clouds]]
name = "elsewhere"
tier = 3
[clouds.sim]
hosts = 1
[[flavors]]
name = "huge"
vcpus = 64
ram_mb = 262144
[[images]]
name = "other-os"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "250")


def canopy(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    return text.replace("\n", "")


@pytest.fixture
def upgraded(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    r = canopy("db", "upgrade", "--data-dir", str(data))
    assert r.exit_code == 0, r.output
    assert canopy("project", "create", "team", "--data-dir", str(data)).exit_code == 0
    return data


def url_of(data: Path) -> str:
    return f"sqlite+aiosqlite:///{data / 'canopy.db'}"


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_command_with_another_config_changes_no_row(
    command: tuple[str, ...], upgraded: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.toml"
    other.write_text(OTHER_CONFIG)
    before = asyncio.run(dump(url_of(upgraded)))
    r = canopy(*command, "--config", str(other), "--data-dir", str(upgraded))
    assert r.exit_code == 0, r.output
    assert asyncio.run(dump(url_of(upgraded))) == before
    assert {row[0] for row in before["clouds"]} == {"private", "public"}


def test_cloud_list_points_out_clouds_the_database_does_not_know(
    upgraded: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.toml"
    other.write_text(OTHER_CONFIG)
    r = canopy("cloud", "list", "--config", str(other), "--data-dir", str(upgraded))
    assert r.exit_code == 0, r.output
    assert "configured but not in the database yet: elsewhere" in flat(r.output)
    assert " private " in r.output and " public " in r.output


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_command_on_a_fresh_data_dir_creates_nothing(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    data = tmp_path / "fresh"
    r = canopy(*command, "--data-dir", str(data))
    assert r.exit_code == 2
    out = flat(r.output)
    assert f"no canopy database at {data / 'canopy.db'} yet" in out
    assert "canopy db upgrade" in out
    assert not data.exists()


def test_a_database_behind_this_canopy_is_not_migrated_by_a_read(tmp_path: Path) -> None:
    data = tmp_path / "old"
    data.mkdir()

    async def at_0002() -> None:
        db = Database(url_of(data))
        await upgrade(db, "0002")
        await db.dispose()

    asyncio.run(at_0002())
    r = canopy("cloud", "list", "--data-dir", str(data))
    assert r.exit_code == 2
    assert (
        f"is at schema revision 0002, this canopy needs {head_revision()}: run `canopy db upgrade`"
        in flat(r.output)
    )
    assert asyncio.run(dump(url_of(data)))["alembic_version"] == [("0002",)]


def test_a_database_ahead_of_this_canopy_is_refused_clearly(upgraded: Path) -> None:
    async def from_the_future() -> None:
        db = Database(url_of(upgraded))
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
        await db.dispose()

    asyncio.run(from_the_future())
    for command in (("cloud", "list"), ("db", "upgrade")):
        r = canopy(*command, "--data-dir", str(upgraded))
        assert r.exit_code == 2, r.output
        assert "schema revision f00d, which this canopy does not know" in flat(r.output)
        assert "Traceback" not in r.output
