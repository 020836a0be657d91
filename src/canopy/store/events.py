"""Instance actions and their events: where a server went and why (os-instance-actions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.models import InstanceAction, InstanceActionEvent


def start_action(
    s: AsyncSession,
    *,
    server_id: str,
    action: str,
    project_id: str,
    user_id: str,
    request_id: str,
    now: datetime,
) -> InstanceAction:
    act = InstanceAction(
        server_id=server_id,
        action=action,
        project_id=project_id,
        user_id=user_id,
        request_id=request_id,
        start_time=now,
        updated_at=now,
    )
    s.add(act)
    return act


_INSERT_ACTIONS = insert(InstanceAction)  # built once: every create makes one


async def start_actions(
    s: AsyncSession,
    server_ids: list[str],
    *,
    action: str,
    project_id: str,
    user_id: str,
    request_id: str,
    now: datetime,
) -> None:
    """`start_action` for many servers with one INSERT (no rows come back)."""
    if not server_ids:
        return
    await s.execute(
        _INSERT_ACTIONS,
        [
            {
                "server_id": sid,
                "action": action,
                "project_id": project_id,
                "user_id": user_id,
                "request_id": request_id,
                "message": None,
                "start_time": now,
                "updated_at": now,
            }
            for sid in server_ids
        ],
    )


async def add_event(
    s: AsyncSession,
    *,
    server_id: str,
    action: str,
    event: str,
    result: str | None,
    details: str | None,
    now: datetime,
    host: str | None = None,
) -> None:
    """Append an event to the server's latest action named `action` (if it has one)."""
    act_id = (
        await s.execute(
            select(InstanceAction.id)
            .where(InstanceAction.server_id == server_id, InstanceAction.action == action)
            .order_by(InstanceAction.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if act_id is None:
        return
    s.add(
        InstanceActionEvent(
            action_id=act_id,
            event=event,
            result=result,
            details=details,
            host=host,
            start_time=now,
            finish_time=now if result else None,
        )
    )


async def latest_action_ids(s: AsyncSession, server_ids: list[str], action: str) -> dict[str, int]:
    """For many servers at once: the id of each one's latest action named `action`."""
    if not server_ids:
        return {}
    rows = await s.execute(
        select(InstanceAction.server_id, func.max(InstanceAction.id))
        .where(InstanceAction.server_id.in_(server_ids), InstanceAction.action == action)
        .group_by(InstanceAction.server_id)
    )
    return {sid: int(aid) for sid, aid in rows}


def event_row(
    action_id: int,
    *,
    event: str,
    result: str | None,
    details: str | None,
    now: datetime,
    host: str | None = None,
) -> dict[str, Any]:
    """An instance action event as a row for a bulk insert."""
    return {
        "action_id": action_id,
        "event": event,
        "result": result,
        "details": details,
        "host": host,
        "start_time": now,
        "finish_time": now if result else None,
    }
