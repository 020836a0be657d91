"""Bulk seeding for the scale benchmarks: many steady servers in a few statements.

Going through the API or the controllers to make 100,000 servers would take longer than
the benchmark itself, so the rows are inserted directly, in the state the controllers
leave a running server in: phase `steady`, status ACTIVE, observed `running`, with a
remote id on its cloud. `seed_claims` gives each its claim (open-ended, counted, the
cloud's counters moved by their sums), as placement leaves a running server. `seed_sim`
writes the matching servers into a sim cloud's state file, so sync finds every row on its
cloud (nothing is a leak, nothing is gone). `drift` changes some of a sim's servers behind
canopy's back, as a real cloud drifts between sync polls.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from canopy.domain.clock import SystemClock
from canopy.domain.states import DesiredState, Phase, RemoteState, ServerStatus
from canopy.providers.sim.status import private_ip, to_us
from canopy.store.db import Database
from canopy.store.models import Claim, Cloud, Flavor, Server

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Seeded:
    """One seeded server: its canopy id and its remote id, in sim sequence order."""

    canopy_id: str
    remote_id: str


def _row(
    i: int,
    project: str,
    cloud: str | None,
    flavor: str,
    when: datetime,
    prefix: str,
    host: str | None = None,
) -> tuple[dict[str, Any], Seeded]:
    sid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    at = when + timedelta(microseconds=i)
    row = {
        "id": sid,
        "project_id": project,
        "user_id": "bench",
        "name": f"{prefix}-{i}",
        "flavor_id": flavor,
        "image_id": "cirros",
        "desired_state": DesiredState.ACTIVE.value,
        "status": ServerStatus.ACTIVE.value,
        "observed_state": RemoteState.RUNNING.value,
        "observed_at": at,
        "cloud": cloud,
        "remote_id": rid if cloud else None,
        "host": host if cloud else None,
        "remote_recorded_at": at if cloud else None,
        "create_requested_at": at if cloud else None,
        "addresses": {},  # filled by seed_sim's caller through sync, or left empty
        "created_at": at,
        "updated_at": at,
        "launched_at": at,
        "phase": Phase.STEADY.value,
        "metadata": {},
        "hints": {},
        "attempt_log": [],
        "key_name": None,
        "requested_zone": None,
        "group_id": None,
        "description": None,
        "locked": False,
        "locked_reason": None,
        "config_drive": False,
        "boot_from_volume": False,
        "launch_index": 0,
        "task_state": None,
        "reboot_requested": 0,
        "reboot_done": 0,
        "reboot_hard": False,
        "attempts": 0,
        "schedule_deadline": None,
        "fault_code": None,
        "fault_message": None,
        "fault_at": None,
        "terminated_at": None,
        "deleted": False,
        "action_at": None,
        "claimed_by": None,
        "claim_expires_at": None,
        "next_attempt_at": None,
        "retries": 0,
    }
    return row, Seeded(sid, rid)


async def seed_servers(
    db: Database,
    *,
    project: str,
    cloud: str | None,
    n: int,
    flavor: str,
    when: datetime,
    prefix: str = "seed",
    addresses: bool = False,
    first_seq: int = 1,
    host: str = "h1",
) -> list[Seeded]:
    """Insert `n` steady servers of `project` on `cloud`, in chunks; return their ids.

    `addresses` gives each row the address the sim shows for the server with sequence
    number `first_seq + i`, and `host` is the host `seed_sim` puts them on, so a sync of a
    seeded sim cloud finds every row unchanged (a row with no host recorded would be
    written by the first full pass: a one-time backfill, not the steady state measured).
    """
    out: list[Seeded] = []
    for start in range(0, n, CHUNK):
        rows = []
        for i in range(start, min(n, start + CHUNK)):
            row, seeded = _row(i, project, cloud, flavor, when, prefix, host)
            if addresses:
                ip = private_ip(first_seq + i)
                row["addresses"] = {"private": [{"addr": ip, "version": 4}]}
            rows.append(row)
            out.append(seeded)
        async with db.session() as s:
            conn = await s.connection()
            await conn.execute(insert(Server.__table__), rows)  # Core: no ORM bookkeeping
    return out


async def seed_claims(
    db: Database, *, cloud: str, servers: list[Seeded], flavor: str, when: datetime
) -> None:
    """Give each of `servers` (seeded on `cloud` with `flavor`) the claim placement writes
    for a running server: open-ended from `when`, counted, the cloud's counters moved by
    their sums, so the controllers that read or write claims see a real fleet's."""
    async with db.read() as s:
        f = (await s.execute(select(Flavor).where(Flavor.id == flavor))).scalar_one()
        vcpus, ram_mb, disk_gb = f.vcpus, f.ram_mb, f.disk_gb
    for start in range(0, len(servers), CHUNK):
        rows = [
            {
                "server_id": sv.canopy_id,
                "reservation_id": None,
                "cloud": cloud,
                "vcpus": vcpus,
                "ram_mb": ram_mb,
                "disk_gb": disk_gb,
                "instances": 1,
                "price_per_hour_micros": 0,
                "starts_at": when,
                "ends_at": None,
                "created_at": when,
                "counted": True,
            }
            for sv in servers[start : start + CHUNK]
        ]
        async with db.session() as s:
            conn = await s.connection()
            await conn.execute(insert(Claim), rows)
            await conn.execute(
                update(Cloud)
                .where(Cloud.name == cloud)
                .values(
                    vcpus_claimed=Cloud.vcpus_claimed + vcpus * len(rows),
                    ram_mb_claimed=Cloud.ram_mb_claimed + ram_mb * len(rows),
                    instances_claimed=Cloud.instances_claimed + len(rows),
                )
            )


def seed_sim(path: Path, servers: list[Seeded], *, when_us: int, host: str = "h1") -> int:
    """Write `servers` into a sim cloud's state file (created by the driver first).

    Returns the sequence number the first one got, for the addresses (see seed_servers).
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM servers").fetchone()
        conn.executemany(
            "INSERT INTO servers (remote_id, canopy_id, name, host, flavor, vcpus, ram_mb,"
            " disk_gb, image, created_at, ready_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'm1.tiny', 1, 512, 1, 'cirros', ?, ?, ?)",
            [
                (
                    s.remote_id,
                    s.canopy_id,
                    f"seed-{s.canopy_id[:8]}",
                    host,
                    when_us,
                    when_us,
                    when_us,
                )
                for s in servers
            ],
        )
        conn.execute("COMMIT")
        return int(last) + 1
    finally:
        conn.close()


def drift(state_file: Path, k: int, rng: random.Random, stopped: float = 0.5) -> int:
    """Change `k` live servers behind canopy's back: a share `stopped` of them stopped, the
    rest deleted (half and half by default); how many were changed."""
    conn = sqlite3.connect(state_file, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        live = [
            r[0]
            for r in conn.execute(
                "SELECT seq FROM servers WHERE deleted_at IS NULL AND power = 'on'"
            ).fetchall()
        ]
        now = to_us_now()
        picked = rng.sample(live, min(k, len(live)))
        half = int(len(picked) * stopped)
        conn.executemany(
            "UPDATE servers SET power = 'off', transition = 'stop', transition_until = ?,"
            " updated_at = ? WHERE seq = ?",
            [(now, now, seq) for seq in picked[:half]],
        )
        conn.executemany(
            "UPDATE servers SET deleted_at = ?, updated_at = ? WHERE seq = ?",
            [(now, now, seq) for seq in picked[half:]],
        )
        conn.execute("COMMIT")
        return len(picked)
    finally:
        conn.close()


def to_us_now() -> int:
    return to_us(SystemClock().now())
