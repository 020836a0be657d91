"""The software configs and deployments made through Heat's REST API: their rows, in
Heat's shapes (`format_software_config`, `format_software_deployment`), always of one
project (another project's row is not found, as Heat's tenant filter makes it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.store.models import SoftwareConfigRow, SoftwareDeploymentRow

MAX_ID = 64  # the rows' ids; a longer one names nothing


def isotime(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def config_view(row: SoftwareConfigRow, *, detail: bool = True) -> dict[str, Any]:
    """Heat's `format_software_config` (a list shows no config, inputs, outputs, options)."""
    out: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "group": row.group,
        "creation_time": isotime(row.created_at),
    }
    if detail:
        for key in ("config", "inputs", "outputs", "options"):
            out[key] = row.body.get(key)
    return out


def deployment_view(row: SoftwareDeploymentRow) -> dict[str, Any]:
    """Heat's `format_software_deployment`."""
    out: dict[str, Any] = {
        "id": row.id,
        "server_id": row.server_id,
        "input_values": row.input_values,
        "output_values": row.output_values,
        "action": row.action,
        "status": row.status,
        "status_reason": row.status_reason,
        "config_id": row.config_id,
        "creation_time": isotime(row.created_at),
    }
    if row.updated_at is not None:
        out["updated_time"] = isotime(row.updated_at)
    return out


async def find_config(s: AsyncSession, project_id: str, config_id: str) -> SoftwareConfigRow | None:
    if len(config_id) > MAX_ID:
        return None
    row = await s.get(SoftwareConfigRow, config_id)
    return row if row is not None and row.project_id == project_id else None


async def get_config(s: AsyncSession, project_id: str, config_id: str) -> SoftwareConfigRow:
    row = await find_config(s, project_id, config_id)
    if row is None:
        raise NotFound(f"Software config with id {config_id[:MAX_ID]} not found")
    return row


async def list_configs(
    s: AsyncSession, project_id: str, limit: int | None, marker: str | None
) -> list[SoftwareConfigRow]:
    """The project's configs, newest first (Heat's default order), after `marker`."""
    query = select(SoftwareConfigRow).where(SoftwareConfigRow.project_id == project_id)
    if marker:
        at = await get_config(s, project_id, marker)
        query = query.where(
            (SoftwareConfigRow.created_at < at.created_at)
            | ((SoftwareConfigRow.created_at == at.created_at) & (SoftwareConfigRow.id < at.id))
        )
    query = query.order_by(SoftwareConfigRow.created_at.desc(), SoftwareConfigRow.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list((await s.execute(query)).scalars())


def new_config(project_id: str, fields: dict[str, Any], now: datetime) -> SoftwareConfigRow:
    return SoftwareConfigRow(id=str(uuid.uuid4()), project_id=project_id, created_at=now, **fields)


async def delete_config(s: AsyncSession, project_id: str, config_id: str) -> None:
    """Heat's rule: a config a deployment references stays (409)."""
    row = await get_config(s, project_id, config_id)
    used = await s.scalar(
        select(SoftwareDeploymentRow.id).where(SoftwareDeploymentRow.config_id == row.id).limit(1)
    )
    if used is not None:
        raise Conflict(f"Software config with id {row.id} can not be deleted as it is referenced.")
    await s.delete(row)


async def deployable_config(s: AsyncSession, project_id: str, config_id: str) -> str:
    """The id of the project's config a deployment names (Heat: 400 for none)."""
    if await find_config(s, project_id, config_id) is None:
        raise InvalidRequest(f"Config with id {config_id[:MAX_ID]} not found")
    return config_id


async def find_deployment(
    s: AsyncSession, project_id: str, deployment_id: str
) -> SoftwareDeploymentRow | None:
    if len(deployment_id) > MAX_ID:
        return None
    row = await s.get(SoftwareDeploymentRow, deployment_id)
    return row if row is not None and row.project_id == project_id else None


async def list_deployments(
    s: AsyncSession, project_id: str, server_id: str | None = None
) -> list[SoftwareDeploymentRow]:
    query = select(SoftwareDeploymentRow).where(SoftwareDeploymentRow.project_id == project_id)
    if server_id is not None:
        query = query.where(SoftwareDeploymentRow.server_id == server_id)
    query = query.order_by(SoftwareDeploymentRow.created_at, SoftwareDeploymentRow.id)
    return list((await s.execute(query)).scalars())


async def server_configs(s: AsyncSession, project_id: str, server_id: str) -> list[dict[str, Any]]:
    """The configs of the API-made deployments to a server, as its metadata shows them."""
    rows = (
        await s.execute(
            select(SoftwareConfigRow)
            .join(SoftwareDeploymentRow, SoftwareDeploymentRow.config_id == SoftwareConfigRow.id)
            .where(
                SoftwareDeploymentRow.project_id == project_id,
                SoftwareDeploymentRow.server_id == server_id,
            )
            .order_by(SoftwareDeploymentRow.created_at, SoftwareDeploymentRow.id)
        )
    ).scalars()
    return [config_view(r) for r in rows]
