"""The behaviour suite's clouds: every test runs on each backend of `backends.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.controllers.harness import Plane, make_plane
from tests.providers.behaviour.backends import (
    COMMON,
    SPARE,
    Backend,
    Ec2Backend,
    NovaBackend,
    SimBackend,
)


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    # What is under test is the cloud, not the database: SQLite only (the store's own
    # tests run on both).
    import shutil

    target = tmp_path / "canopy.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(params=["sim", "sim-atomic", "ec2", "openstack"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    kind = request.param
    if kind == "sim":
        return SimBackend(atomic=False)
    if kind == "sim-atomic":
        return SimBackend(atomic=True)
    if kind == "ec2":
        moto = request.getfixturevalue("moto")
        ami = request.getfixturevalue("ami")
        return Ec2Backend(moto, ami)
    return NovaBackend(request.getfixturevalue("real_nova"), tmp_path)


@pytest.fixture
async def plane(backend: Backend, db_url: str, tmp_path: Path) -> AsyncIterator[Plane]:
    """A control plane whose cloud `c1` is the backend, with a sim `spare` in tier 1."""
    p = await make_plane(
        db_url,
        tmp_path,
        toml=COMMON + backend.toml() + SPARE,
        # Pages of one server: every pass of a cloud with two servers is a listing of
        # several pages (EC2's DescribeTags takes 5 at least), as a big cloud's is.
        overrides={"controllers": {"full_sync_every": 1, "sync_page_size": 1}},
    )
    await backend.attach(p)
    try:
        yield p
    finally:
        await p.close()
