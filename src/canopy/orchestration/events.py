"""Writing stack and resource events as things happen (in the step's transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.orchestration.states import STACK_TYPE
from canopy.store.models import Stack, StackEvent, StackResource


def stack_event(
    s: AsyncSession, stack: Stack, action: str, status: str, reason: str, now: datetime
) -> None:
    """A stack-level event: what `openstack stack create --wait` watches for."""
    s.add(
        StackEvent(
            id=str(uuid.uuid4()),
            stack_id=stack.id,
            resource_name=stack.name,
            logical_resource_id=stack.name,
            physical_resource_id=stack.id,
            resource_type=STACK_TYPE,
            action=action,
            status=status,
            status_reason=reason,
            time=now,
        )
    )


def resource_event(s: AsyncSession, res: StackResource, reason: str, now: datetime) -> None:
    """An event for `res` in its current action and status."""
    s.add(
        StackEvent(
            id=str(uuid.uuid4()),
            stack_id=res.stack_id,
            resource_name=res.name,
            logical_resource_id=res.name,
            physical_resource_id=res.physical_resource_id or "",
            resource_type=res.type,
            action=res.action,
            status=res.status,
            status_reason=reason,
            time=now,
        )
    )
