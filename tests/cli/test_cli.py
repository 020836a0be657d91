"""The `canopy` command, driven in-process through Typer's CliRunner."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from canopy import __version__
from canopy.cli.main import app
from canopy.providers import registry
from canopy.store.capacity_blocks import block
from canopy.store.db import Database
from canopy.store.migrate import alembic_config
from canopy.store.models import Cloud, Flavor


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CANOPY_* variable from the caller's shell leaks in; Rich gets a wide terminal."""
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


def flat(text: str) -> str:
    """The output with Rich's line folding undone, for matching long paths."""
    return text.replace("\n", "")


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def upgraded(runner: CliRunner, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    result = invoke(runner, "db", "upgrade", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    return data


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = invoke(runner, "--help")
    assert result.exit_code == 0
    for command in ("up", "api", "worker", "db", "cloud", "demo", "version"):
        assert re.search(rf"│ {command}\s", result.output), command
    assert "control plane over many clouds" in result.output


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    result = invoke(runner)
    assert "Usage" in result.output and "cloud" in result.output


def test_version(runner: CliRunner) -> None:
    result = invoke(runner, "version")
    assert result.exit_code == 0
    assert result.output.strip() == __version__


def test_db_upgrade_creates_the_sqlite_file(runner: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    assert not data.exists()
    result = invoke(runner, "db", "upgrade", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert (data / "canopy.db").is_file()
    out = flat(result.output)
    assert f"database at revision {head_revision()}" in out
    assert str(data / "canopy.db") in out
    # Again: nothing to do, same answer.
    again = invoke(runner, "db", "upgrade", "--data-dir", str(data))
    assert again.exit_code == 0 and head_revision() in again.output


def test_db_upgrade_honours_canopy_data_dir(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "db", "upgrade", env={"CANOPY_DATA_DIR": str(tmp_path / "env")})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env" / "canopy.db").is_file()


def test_cloud_list(runner: CliRunner, upgraded: Path) -> None:
    result = invoke(runner, "cloud", "list", "--data-dir", str(upgraded))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "│" in line]
    private = next(r for r in rows if " private " in r)
    public = next(r for r in rows if " public " in r)
    assert re.search(r"│ private\s+│ sim\s+│\s+0 │ healthy", private)
    assert re.search(r"│ public\s+│ sim\s+│\s+1 │ healthy", public)
    # Capacity comes from the cloud (the inventory a worker reads): unknown until then.
    assert "0/?" in private
    assert rows.index(private) < rows.index(public)  # tier order


def test_cloud_show(runner: CliRunner, upgraded: Path) -> None:
    result = invoke(runner, "cloud", "show", "private", "--data-dir", str(upgraded))
    assert result.exit_code == 0, result.output
    fields = {
        m.group(1).strip(): m.group(2).strip()
        for m in re.finditer(r"│ ([^│]+?)\s+│ ([^│]*?)\s+│", result.output)
    }
    assert fields["driver"] == "sim"
    assert fields["tier"] == "0"
    assert fields["enabled"] == "True"
    assert fields["capacity vcpus/ram_mb/instances"].startswith("not read yet")
    assert fields["claimed vcpus/ram_mb/instances"] == "0/0/0"
    assert fields["credentials"] == "none"


def test_cloud_show_zones_blocks_and_abilities(runner: CliRunner, upgraded: Path) -> None:
    async def record() -> None:
        db = Database(f"sqlite+aiosqlite:///{upgraded / 'canopy.db'}")
        try:
            async with db.session() as s:
                await s.execute(
                    update(Cloud)
                    .where(Cloud.name == "private")
                    .values(zones=["a", "b"], abilities={"stop_start": "spot only"})
                )
                flavor = (
                    await s.execute(select(Flavor).where(Flavor.name == "m1.small"))
                ).scalar_one()
                await block(
                    s,
                    cloud="private",
                    zone="a",
                    flavor_id=flavor.id,
                    until=datetime.now(UTC) + timedelta(hours=1),
                    reason="capacity error: full",
                )
        finally:
            await db.dispose()

    asyncio.run(record())
    result = invoke(runner, "cloud", "show", "private", "--data-dir", str(upgraded))
    assert result.exit_code == 0, result.output
    fields = {
        m.group(1).strip(): m.group(2).strip()
        for m in re.finditer(r"│ ([^│]+?)\s+│ ([^│]*?)\s+│", result.output)
    }
    assert fields["zones"] == "a, b"
    assert fields["can stop_start"] == "no: spot only"
    assert fields["can reboot"] == "yes"
    assert fields["blocked: m1.small in a"].endswith("capacity error: full")
    public = invoke(runner, "cloud", "show", "public", "--data-dir", str(upgraded))
    assert "not asked yet" in public.output  # no worker has asked the cloud for its zones


def test_cloud_show_splits_capacity_into_total_others_and_canopys(
    runner: CliRunner, upgraded: Path
) -> None:
    async def record() -> None:
        db = Database(f"sqlite+aiosqlite:///{upgraded / 'canopy.db'}")
        try:
            async with db.session() as s:
                await s.execute(
                    update(Cloud)
                    .where(Cloud.name == "private")
                    .values(
                        vcpus_capacity=6, vcpus_others=4, ram_mb_capacity=30000,
                        ram_mb_others=2768, instances_capacity=None, instances_others=None,
                        capacity_updated_at=datetime.now(UTC),
                    )
                )  # fmt: skip
        finally:
            await db.dispose()

    asyncio.run(record())
    result = invoke(runner, "cloud", "show", "private", "--data-dir", str(upgraded))
    assert result.exit_code == 0, result.output
    fields = {
        m.group(1).strip(): m.group(2).strip()
        for m in re.finditer(r"│ ([^│]+?)\s+│ ([^│]*?)\s+│", result.output)
    }
    assert fields["capacity vcpus/ram_mb/instances"] == "6/30000/None"
    assert fields["cloud total vcpus/ram_mb/instances"] == "10/32768/None"
    assert fields["used by others vcpus/ram_mb/instances"] == "4/2768/?"


def test_cloud_show_unknown(runner: CliRunner, upgraded: Path) -> None:
    result = invoke(runner, "cloud", "show", "nope", "--data-dir", str(upgraded))
    assert result.exit_code == 2
    assert "no cloud named 'nope'" in result.output
    assert "canopy cloud list" in result.output  # where to look instead


def test_bad_config_line_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'  # 1
        "\n"  # 2
        "[[clouds]]\n"  # 3
        'name = "private"\n'  # 4
        "[clouds.sim]\n"  # 5
        "hosts = -1\n"  # 6
    )
    result = invoke(runner, "cloud", "list", "--config", str(f))
    assert result.exit_code == 2
    out = flat(result.output)
    assert f"{f}:6:" in out
    assert "clouds[0].sim.hosts" in out and "greater than or equal to 0" in out
    assert not (tmp_path / "data").exists()  # it stopped before touching anything


def test_invalid_toml_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    f = tmp_path / "broken.toml"
    f.write_text("[api\nport = 1\n")
    result = invoke(runner, "db", "upgrade", "--config", str(f))
    assert result.exit_code == 2
    out = flat(result.output)
    assert str(f) in out and "line 1" in out


def test_missing_config_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "cloud", "list", "--config", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert "cannot read the config file" in flat(result.output)


def test_unsupported_driver_exits_2_naming_the_cloud(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every driver of the schema ships in this release: pretend one does not.
    monkeypatch.setitem(registry.PLANNED, "openstack", "the openstack driver is not here")
    f = tmp_path / "aws.toml"
    f.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        '[[clouds]]\nname = "child"\ndriver = "openstack"\ntier = 1\n'
        '[clouds.openstack]\ncloud = "child"\n'
    )
    result = invoke(runner, "db", "upgrade", "--config", str(f))
    assert result.exit_code == 2
    assert "child" in result.output and "openstack" in result.output


def test_error_text_keeps_its_brackets(runner: CliRunner, tmp_path: Path) -> None:
    f = tmp_path / "ec2.toml"
    f.write_text('[[clouds]]\nname = "aws"\ndriver = "ec2"\n')
    result = invoke(runner, "cloud", "list", "--config", str(f))
    assert result.exit_code == 2
    assert "has no [clouds.ec2]" in flat(result.output)


def test_data_dir_flag_beats_the_environment(runner: CliRunner, tmp_path: Path) -> None:
    env = {"CANOPY_DATA_DIR": str(tmp_path / "from-env")}
    result = invoke(runner, "db", "upgrade", "--data-dir", str(tmp_path / "flag"), env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "flag" / "canopy.db").is_file()
    assert not (tmp_path / "from-env").exists()
