"""Rows for store tests: seeded settings and bare server rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings, load_settings
from canopy.domain.states import DesiredState, Phase, ServerStatus
from canopy.store.models import Server

CLOUDS: list[dict[str, Any]] = [
    {"name": "private", "tier": 0, "sim": {"hosts": 2, "host_vcpus": 8, "host_ram_mb": 16384}},
    {
        "name": "public",
        "tier": 1,
        "sim": {"hosts": 10, "host_vcpus": 64, "price_per_vcpu_hour": 0.05},
    },
]


def settings(data_dir: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"data_dir": data_dir, "clouds": CLOUDS}
    base.update(overrides)
    return load_settings(None, env={}, overrides=base)


def server_row(
    now: datetime,
    *,
    flavor_id: str = "2",
    project_id: str = "p1",
    phase: str = Phase.SCHEDULE,
    sid: str | None = None,
    **kw: Any,
) -> Server:
    values: dict[str, Any] = {
        "id": sid or str(uuid.uuid4()),
        "project_id": project_id,
        "user_id": "u1",
        "name": "vm",
        "flavor_id": flavor_id,
        "desired_state": DesiredState.ACTIVE,
        "status": ServerStatus.BUILD,
        "phase": phase,
        "attempts": 0,
        "attempt_log": [],
        "addresses": {},
        "reboot_requested": 0,
        "reboot_done": 0,
        "retries": 0,
        "created_at": now,
        "updated_at": now,
        "deleted": False,
        "metadata_": {},
        "hints": {},
    }
    values.update(kw)
    return Server(**values)


async def add_servers(s: AsyncSession, rows: list[Server]) -> list[str]:
    s.add_all(rows)
    await s.flush()
    return [r.id for r in rows]
