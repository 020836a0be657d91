"""An EC2 cloud added at run time, with credentials given then (sealed in the database),
drives moto's server: the worker builds its driver from the row and the stored keys (the
environment has none), places a server there, tags it with the canopy id and the
installation id, and deletes it."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.credentials import vault
from canopy.providers.base import CANOPY_ID_TAG, INSTALLATION_TAG
from canopy.services.clouds import NewCloud, add_cloud
from canopy.store.models import Cloud, Image, ImageMapping
from tests.controllers.harness import make_plane

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

ONE_SIM = """
[[clouds]]
name = "private"
[clouds.sim]
hosts = 1
host_vcpus = 1
api_latency_ms = 0
"""


def migrated(template: Path, tmp_path: Path) -> str:
    """A database built by the migrations (a copy of the session's template)."""
    target = tmp_path / "canopy.db"
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


def _tags(ec2: Any) -> list[dict[str, str]]:
    out = []
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            if i["State"]["Name"] not in ("terminated", "shutting-down"):
                out.append({t["Key"]: t["Value"] for t in i.get("Tags", [])})
    return out


async def test_an_ec2_cloud_added_at_run_time_uses_its_stored_credentials(
    moto: str,
    ec2: Any,
    ami: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_template: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Everything logged at DEBUG, boto's own loggers included: the keys must show nowhere.
    caplog.set_level(logging.DEBUG)
    # Nothing in the environment: only the stored keys can reach moto.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    p = await make_plane(migrated(sqlite_template, tmp_path), tmp_path, toml=ONE_SIM)
    try:
        new = NewCloud(
            name="aws-2",
            driver="ec2",
            tier=1,
            options={
                "region": "us-east-1",
                "endpoint_url": moto,
                "zones": ["us-east-1a"],
                "instance_types": ["t3.*"],
            },
            credentials={"access_key_id": KEY_ID, "secret_access_key": SECRET},
        )
        async with p.db.session() as s:
            await add_cloud(s, new, lambda: vault(None, tmp_path), p.clock.now())
            cirros = (await s.execute(select(Image).where(Image.name == "cirros"))).scalar_one()
            s.add(ImageMapping(cloud="aws-2", image_id=cirros.id, remote_image=ami))
        await p.step()
        async with p.db.read() as s:
            row = await s.get(Cloud, "aws-2")
            assert row is not None and row.capacity_updated_at is not None, (
                row and row.health_message
            )
            assert row.healthy

        [sid] = await p.create(1, flavor="m1.tiny", availability_zone="aws-2")

        async def active() -> bool:
            return (await p.service.get(p.ctx, sid)).status == "ACTIVE"

        await p.run_until(active, steps=60)
        server = await p.service.get(p.ctx, sid)
        assert server.cloud == "aws-2"
        tags = _tags(ec2)
        assert [t[CANOPY_ID_TAG] for t in tags] == [sid]
        assert tags[0][INSTALLATION_TAG] == await p.rt.installation_id()

        await p.service.delete(p.ctx, sid)

        async def gone() -> bool:
            return not _tags(ec2)

        await p.run_until(gone, steps=60)
        said = caplog.text
        assert "Starting new HTTP connection" in said  # the HTTP layer did log at DEBUG
        assert KEY_ID not in said and SECRET not in said
    finally:
        await p.close()


async def test_without_its_stored_credentials_the_cloud_is_unhealthy(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    p = await make_plane(migrated(sqlite_template, tmp_path), tmp_path, toml=ONE_SIM)
    try:
        new = NewCloud(
            name="aws-2",
            driver="ec2",
            options={"region": "us-east-1", "endpoint_url": moto, "zones": ["us-east-1a"]},
            credentials={"access_key_id": KEY_ID, "secret_access_key": SECRET},
        )
        async with p.db.session() as s:
            await add_cloud(s, new, lambda: vault(None, tmp_path), p.clock.now())
        # The data dir's key is replaced: the stored keys no longer open.
        (tmp_path / "secret.key").unlink()
        await p.step()
        async with p.db.read() as s:
            row = await s.get(Cloud, "aws-2")
            assert row is not None and not row.healthy
            assert "secret key" in row.health_message
        assert "aws-2" not in p.rt.drivers
    finally:
        await p.close()
