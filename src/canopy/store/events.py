"""Instance actions and their events: where a server went and why (os-instance-actions)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
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
