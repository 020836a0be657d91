"""`canopy image create/list`: images registered in the database, seen by the Glance API."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from canopy.cli.main import app
from canopy.store.db import Database
from canopy.store.models import Image, ImageMapping


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    return data


def canopy(data: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--data-dir", str(data)])


def images(data: Path) -> dict[str, tuple[str, dict[str, str]]]:
    async def _read() -> dict[str, tuple[str, dict[str, str]]]:
        db = Database(f"sqlite+aiosqlite:///{data}/canopy.db")
        try:
            async with db.read() as s:
                rows = list((await s.execute(select(Image))).scalars())
                maps = list((await s.execute(select(ImageMapping))).scalars())
        finally:
            await db.dispose()
        return {
            i.name: (i.id, {m.cloud: m.remote_image for m in maps if m.image_id == i.id})
            for i in rows
        }

    return asyncio.run(_read())


def test_create_with_maps_and_an_id(data: Path) -> None:
    chosen = str(uuid.uuid4())
    result = canopy(data, "image", "create", "debian-12", "--map", "public=img-deb", "--id", chosen)
    assert result.exit_code == 0, result.output
    assert "registered" in result.output and chosen in result.output
    assert "public=img-deb" in result.output and "private" in result.output
    assert images(data)["debian-12"] == (chosen, {"public": "img-deb"})

    result = canopy(data, "image", "list")
    assert result.exit_code == 0
    for name in ("cirros", "ubuntu-24.04", "debian-12"):
        assert name in result.output


def test_create_without_maps_says_the_clouds_are_not_read_yet(data: Path) -> None:
    # `db upgrade` only: no inventory has said yet whether the sim clouds boot any image.
    result = canopy(data, "image", "create", "alpine")
    assert result.exit_code == 0, result.output
    image_id, maps = images(data)["alpine"]
    assert uuid.UUID(image_id) and maps == {}
    out = " ".join(result.output.split())
    assert "not known yet on: private, public" in out and "boots on" not in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["cirros"], "already exists"),
        (["x", "--map", "mars=img"], "mars"),
        (["x", "--map", "public"], "CLOUD=REMOTE_ID"),
        (["x", "--map", "=img"], "CLOUD=REMOTE_ID"),
        (["x", "--map", "public=a", "--map", "public=b"], "twice"),
        (["x", "--id", "not-a-uuid"], "not a UUID"),
        (["x", "--id", "6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01"], "already exists"),
    ],
)
def test_clear_errors(data: Path, args: list[str], words: str) -> None:
    result = canopy(data, "image", "create", *args)
    assert result.exit_code == 2, result.output
    assert words in result.output.replace("\n", "")
    assert "x" not in images(data)


def test_an_empty_database_says_what_to_do(tmp_path: Path) -> None:
    result = canopy(tmp_path / "fresh", "image", "create", "x")
    assert result.exit_code == 2
    assert "canopy db upgrade" in result.output.replace("\n", "")
