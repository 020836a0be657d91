"""`canopy lease find-slot` against a database as it is: the same search as the API."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from canopy.cli.main import app
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud, Flavor, FlavorMapping


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def busy_until(tmp_path: Path) -> tuple[Path, datetime]:
    """private: 8 vcpus, m1.small offered free; public offers nothing. A reservation holds
    all of private until a whole minute about two hours from now."""
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    now = datetime.now(UTC)
    end = now.replace(second=0, microsecond=0) + timedelta(hours=2)

    async def record() -> None:
        db = Database(f"sqlite+aiosqlite:///{data / 'canopy.db'}")
        try:
            async with db.session() as s:
                await s.execute(
                    update(Cloud)
                    .where(Cloud.name == "private")
                    .values(vcpus_capacity=8, ram_mb_capacity=65536, capacity_updated_at=now)
                )
                small = await s.scalar(select(Flavor.id).where(Flavor.name == "m1.small"))
                await s.execute(
                    insert(FlavorMapping).values(
                        cloud="private", flavor_id=small, remote_flavor="s", price_per_hour_micros=0
                    )
                )
                await s.execute(
                    insert(Claim).values(
                        reservation_id="r-1",
                        cloud="private",
                        vcpus=8,
                        ram_mb=8192,
                        disk_gb=0,
                        instances=4,
                        price_per_hour_micros=0,
                        starts_at=now - timedelta(minutes=5),
                        ends_at=end,
                        created_at=now,
                    )
                )
        finally:
            await db.dispose()

    asyncio.run(record())
    return data, end


def test_find_slot_prints_the_window_and_where_it_is_held(
    busy_until: tuple[Path, datetime],
) -> None:
    data, end = busy_until
    args = ["lease", "find-slot", "--flavor", "m1.small", "--count", "3", "--duration", "8h"]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    start = end.strftime("%Y-%m-%d %H:%M")
    stop = (end + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert f"{start} -> {stop} (UTC) for 3 x m1.small, 0/hour, 0 in all" in result.output
    row = next(line for line in result.output.splitlines() if "│ private" in line)
    assert "│       3 │" in row
    assert f"--start-date '{start}' --end-date '{stop}'" in result.output


def test_find_slot_says_when_there_is_none_and_exits_1(busy_until: tuple[Path, datetime]) -> None:
    data, end = busy_until
    before = (end + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M")
    args = ["lease", "find-slot", "--vcpus", "1", "--memory-mb", "512", "--duration", "1h"]
    result = CliRunner().invoke(app, [*args, "--before", before, "--data-dir", str(data)])
    assert result.exit_code == 1, result.output
    assert "No window for 1 x 1 vcpus / 512 MB / 0 GB in that range." in result.output
    assert "Not enough resources available" in result.output


def test_find_slot_refuses_a_bad_duration_with_the_reason(
    busy_until: tuple[Path, datetime],
) -> None:
    data, _ = busy_until
    args = ["lease", "find-slot", "--flavor", "m1.small", "--duration", "forever"]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data)])
    assert result.exit_code == 2
    assert "duration must be a length like 90m, 8h, 2d or 1d12h" in result.output
