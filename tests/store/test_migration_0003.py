"""Migration 0003 carries every existing row: claims get a window and an owner, money
becomes micro-units, and the server attributes kept in `hints["_canopy"]` move to their
columns and tables. Checked from a database at 0002 holding rows, on both backends."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from canopy.store.db import Database
from canopy.store.migrate import current_revision, downgrade, head_revision, upgrade
from tests.conftest import PG_ADMIN_URL

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


async def _admin(sql: str) -> None:
    admin = Database(PG_ADMIN_URL)
    async with admin.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(sql))
    await admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("pg_url")  # skips when PostgreSQL is not there
    name = f"canopy_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def empty(empty_url: str) -> AsyncIterator[Database]:
    db = Database(empty_url)
    yield db
    await db.dispose()


def _server(sid: str, hints: dict[str, Any], **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": sid,
        "project_id": "p1",
        "user_id": "u1",
        "name": f"vm-{sid}",
        "flavor_id": "f1",
        "metadata": {"role": "web"},
        "hints": hints,
        "desired_state": "active",
        "status": "ACTIVE",
        "reboot_requested": 0,
        "reboot_done": 0,
        "reboot_hard": False,
        "attempts": 1,
        "attempt_log": [],
        "addresses": {"net": [{"addr": "10.0.0.1", "version": 4}]},
        "retries": 0,
        "created_at": T0,
        "updated_at": T0,
        "deleted": False,
        "phase": "steady",
        "cloud": "public",
    }
    row.update(kw)
    return row


def _cloud(name: str, tier: int, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "driver": "sim",
        "tier": tier,
        "enabled": True,
        "healthy": True,
        "health_message": "",
        "consecutive_failures": 0,
        "blocklist_reason": "",
        "vcpus_capacity": 64,
        "ram_mb_capacity": 131072,
        "vcpus_claimed": 0,
        "ram_mb_claimed": 0,
        "instances_claimed": 0,
        "spend_per_hour": 0.0,
    }
    row.update(kw)
    return row


USER_DATA = "IyEvYmluL3NoCmVjaG8gaGkK"
S1, S2, S3 = "s-1", "s-2", "s-3"


def _fill_0002(conn: Connection) -> None:
    """Rows as the code at revision 0002 wrote them."""
    md = sa.MetaData()
    md.reflect(conn)
    t = md.tables
    conn.execute(
        t["clouds"].insert(),
        [
            _cloud("private", 0),
            # 0.1 + 0.05 as 0002 summed it, with the float's drift.
            _cloud(
                "public",
                1,
                vcpus_claimed=3,
                ram_mb_claimed=6144,
                instances_claimed=2,
                spend_per_hour=0.1 + 0.05 + 1e-17,
            ),
        ],
    )
    conn.execute(
        t["flavors"].insert(),
        [
            {"id": fid, "name": name, "vcpus": v, "ram_mb": r, "disk_gb": 0, "is_public": True}
            | {"created_at": T0}
            for fid, name, v, r in (("f1", "m1.small", 1, 2048), ("f2", "m1.medium", 2, 4096))
        ],
    )
    conn.execute(
        t["flavor_mappings"].insert(),
        [
            {"cloud": "public", "flavor_id": "f1", "remote_flavor": "s", "price_per_hour": 0.05},
            {"cloud": "public", "flavor_id": "f2", "remote_flavor": "m", "price_per_hour": 0.1},
            {
                "cloud": "private",
                "flavor_id": "f1",
                "remote_flavor": "s",
                "price_per_hour": 0.1 / 3,
            },
        ],
    )
    conn.execute(
        t["servers"].insert(),
        [
            _server(
                S1,
                {
                    "group": "g-1",
                    "custom": [1, 2],
                    "_canopy": {
                        "description": "the first",
                        "tags": ["web", "blue", "web"],
                        "user_data": USER_DATA,
                        "config_drive": True,
                        "launch_index": 2,
                    },
                },
                flavor_id="f2",
            ),
            _server(S2, {}),
            _server(S3, {"_canopy": {"boot_from_volume": True}}, cloud=None, status="BUILD"),
        ],
    )
    conn.execute(
        t["claims"].insert(),
        [
            {
                "server_id": S1,
                "cloud": "public",
                "vcpus": 2,
                "ram_mb": 4096,
                "disk_gb": 0,
                "instances": 1,
                "price_per_hour": 0.1,
                "created_at": T0,
            },
            {
                "server_id": S2,
                "cloud": "public",
                "vcpus": 1,
                "ram_mb": 2048,
                "disk_gb": 0,
                "instances": 1,
                "price_per_hour": 0.05,
                "created_at": T0 + timedelta(seconds=1),
            },
        ],
    )


def _rows(conn: Connection, table: str, order: str) -> list[dict[str, Any]]:
    md = sa.MetaData()
    t = sa.Table(table, md, autoload_with=conn)
    return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(sa.text(order)))]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_rows_at_0002_are_carried_to_head(empty: Database) -> None:
    db = empty
    await upgrade(db, "0002")
    async with db.engine.begin() as conn:
        await conn.run_sync(_fill_0002)

    await upgrade(db)
    assert await current_revision(db) == head_revision()

    async with db.engine.connect() as conn:
        servers = {r["id"]: r for r in await conn.run_sync(_rows, "servers", "id")}
        tags = await conn.run_sync(_rows, "server_tags", "server_id, tag")
        user_data = await conn.run_sync(_rows, "server_user_data", "server_id")
        claims = await conn.run_sync(_rows, "claims", "id")
        clouds = {r["name"]: r for r in await conn.run_sync(_rows, "clouds", "name")}
        prices = await conn.run_sync(_rows, "flavor_mappings", "cloud, flavor_id")

    # The attributes left the hints; the user's own hints stayed.
    s1, s2, s3 = servers[S1], servers[S2], servers[S3]
    assert s1["hints"] == {"group": "g-1", "custom": [1, 2]}
    assert (s1["description"], s1["config_drive"], s1["launch_index"]) == ("the first", 1, 2)
    assert (s1["locked"], s1["boot_from_volume"], s1["locked_reason"]) == (0, 0, None)
    assert s1["metadata"] == {"role": "web"} and s1["addresses"]["net"][0]["addr"] == "10.0.0.1"
    assert s2["hints"] == {} and s2["description"] is None and s2["launch_index"] == 0
    assert s3["hints"] == {} and s3["boot_from_volume"] == 1 and s3["status"] == "BUILD"
    assert [(r["server_id"], r["tag"]) for r in tags] == [(S1, "blue"), (S1, "web")]
    assert user_data == [{"server_id": S1, "data": USER_DATA}]

    # Claims: same servers and amounts, a window from their creation on, prices exact.
    assert [
        (c["server_id"], c["reservation_id"], c["cloud"], c["vcpus"], c["ram_mb"]) for c in claims
    ] == [(S1, None, "public", 2, 4096), (S2, None, "public", 1, 2048)]
    assert [c["price_per_hour_micros"] for c in claims] == [100_000, 50_000]
    assert [_aware(c["starts_at"]) for c in claims] == [T0, T0 + timedelta(seconds=1)]
    assert [c["ends_at"] for c in claims] == [None, None]

    # Cloud counters kept; spend is the claims' sum, without the float's drift.
    pub = clouds["public"]
    assert (pub["vcpus_claimed"], pub["ram_mb_claimed"], pub["instances_claimed"]) == (
        3,
        6144,
        2,
    )
    assert pub["spend_per_hour_micros"] == 150_000
    assert clouds["private"]["spend_per_hour_micros"] == 0
    assert "spend_per_hour" not in pub
    assert [(p["cloud"], p["flavor_id"], p["price_per_hour_micros"]) for p in prices] == [
        ("private", "f1", 33_333),
        ("public", "f1", 50_000),
        ("public", "f2", 100_000),
    ]

    # The new rule holds on the migrated table: a claim has exactly one owner.
    for owner in ({}, {"server_id": S3, "reservation_id": "r-1"}):
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "INSERT INTO claims (server_id, reservation_id, cloud, vcpus, ram_mb, "
                        "disk_gb, instances, price_per_hour_micros, starts_at, created_at) "
                        "VALUES (:s, :r, 'public', 1, 1, 0, 1, 0, :t, :t)"
                    ),
                    {"s": owner.get("server_id"), "r": owner.get("reservation_id"), "t": T0},
                )


async def test_downgrade_puts_the_attributes_back(empty: Database) -> None:
    db = empty
    await upgrade(db, "0002")
    async with db.engine.begin() as conn:
        await conn.run_sync(_fill_0002)
    await upgrade(db)

    await downgrade(db, "0002")
    assert await current_revision(db) == "0002"
    async with db.engine.connect() as conn:
        servers = {r["id"]: r for r in await conn.run_sync(_rows, "servers", "id")}
        clouds = {r["name"]: r for r in await conn.run_sync(_rows, "clouds", "name")}
        claims = await conn.run_sync(_rows, "claims", "id")
    assert servers[S1]["hints"] == {
        "group": "g-1",
        "custom": [1, 2],
        "_canopy": {
            "description": "the first",
            "tags": ["blue", "web"],
            "user_data": USER_DATA,
            "config_drive": True,
            "launch_index": 2,
        },
    }
    assert servers[S2]["hints"] == {}
    assert servers[S3]["hints"] == {"_canopy": {"boot_from_volume": True}}
    assert clouds["public"]["spend_per_hour"] == pytest.approx(0.15)
    assert [c["price_per_hour"] for c in claims] == [pytest.approx(0.1), pytest.approx(0.05)]
