"""Nova: os-instance-actions, where a server went and why.

Each request against a server (create, stop, start, reboot, delete) is an action; the
controllers append events to it: every placement attempt with the scheduler's explanation,
each spawn on a cloud, each power step. Up to 2.79 Nova's events carry no free text (their
`details` arrived in 2.84), so:

- the action's `message` tells the story of its events, in order, for everyone
  ("schedule (attempt 1): placed on private: ...; spawn (attempt 1): created ..."), which is
  what `openstack server event list --long` and `server event show` print;
- each event's `traceback` carries its own explanation, for admins only (Nova's policy for
  that field).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import AuthDep
from canopy.api.compute.common import (
    could_be_id,
    host_id,
    last,
    limit_and_marker,
    page_links,
    parse_isotime,
    perfect_time,
    reject_nul_query,
    reject_unknown,
)
from canopy.api.compute.microversion import APIVersion, VersionDep
from canopy.api.compute.server_deps import ServiceDep
from canopy.api.deps import ReadSessionDep, SettingsDep
from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest, NotFound
from canopy.store.models import InstanceAction, InstanceActionEvent, Server

router = APIRouter()


async def _server(
    service: Any, ctx: RequestContext, v: APIVersion, s: AsyncSession, server_id: str
) -> Server:
    # From 2.21 the actions of a deleted server stay readable.
    server: Server = await service.get(ctx, server_id, include_deleted=v.at_least(21), session=s)
    return server


async def _events(
    s: AsyncSession, action_ids: Sequence[int]
) -> dict[int, list[InstanceActionEvent]]:
    out: dict[int, list[InstanceActionEvent]] = defaultdict(list)
    if not action_ids:
        return out
    q = (
        select(InstanceActionEvent)
        .where(InstanceActionEvent.action_id.in_(list(action_ids)))
        .order_by(InstanceActionEvent.id)
    )
    for e in (await s.execute(q)).scalars():
        out[e.action_id].append(e)
    return out


def _message(action: InstanceAction, events: Sequence[InstanceActionEvent]) -> str | None:
    if action.message:
        return action.message
    parts = [f"{e.event}: {e.details}" for e in events if e.details]
    return "; ".join(parts) or None


def _action(
    v: APIVersion, a: InstanceAction, events: Sequence[InstanceActionEvent]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": a.action,
        "instance_uuid": a.server_id,
        "request_id": a.request_id,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "start_time": perfect_time(a.start_time),
        "message": _message(a, events),
    }
    if v.at_least(58):
        out["updated_at"] = perfect_time(a.updated_at)
    return out


@router.get("/servers/{server_id}/os-instance-actions", summary="List a server's actions")
async def list_actions(
    server_id: str,
    request: Request,
    v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    settings: SettingsDep,
    service: ServiceDep,
) -> dict[str, Any]:
    reject_nul_query(request)
    server = await _server(service, ctx, v, s, server_id)
    q = select(InstanceAction).where(InstanceAction.server_id == server.id)
    limit: int | None = None
    if v.at_least(58):
        known = {"limit", "marker", "changes-since"}
        if v.at_least(66):
            known.add("changes-before")
        reject_unknown(request, frozenset(known))
        raw_since = last(request, "changes-since")
        raw_before = last(request, "changes-before")
        since = parse_isotime("changes-since", raw_since) if raw_since is not None else None
        before = parse_isotime("changes-before", raw_before) if raw_before is not None else None
        if since and before and before < since:
            raise InvalidRequest(
                "The value of changes-since must be less than or equal to changes-before."
            )
        if since is not None:
            q = q.where(InstanceAction.updated_at >= since)
        if before is not None:
            q = q.where(InstanceAction.updated_at <= before)
        limit, marker = limit_and_marker(request)
        if marker is not None:
            m = (
                await s.execute(
                    select(InstanceAction.start_time, InstanceAction.id)
                    .where(
                        InstanceAction.server_id == server.id,
                        InstanceAction.request_id == marker,
                    )
                    .order_by(InstanceAction.id.desc())
                    .limit(1)
                )
            ).one_or_none()
            if m is None:
                raise InvalidRequest(f"Marker {marker} could not be found.")
            q = q.where(
                or_(
                    InstanceAction.start_time < m[0],
                    and_(InstanceAction.start_time == m[0], InstanceAction.id < m[1]),
                )
            )
        if limit == 0:
            return {"instanceActions": []}
    q = q.order_by(InstanceAction.start_time.desc(), InstanceAction.id.desc())
    if limit is not None:
        q = q.limit(limit)
    actions = list((await s.execute(q)).scalars())
    events = await _events(s, [a.id for a in actions])
    out: dict[str, Any] = {"instanceActions": [_action(v, a, events[a.id]) for a in actions]}
    if limit is not None:
        path = f"servers/{server.id}/os-instance-actions"
        nxt = page_links(request, settings, path, actions, limit, lambda a: a.request_id)
        if nxt:
            out["links"] = nxt
    return out


@router.get(
    "/servers/{server_id}/os-instance-actions/{request_id}",
    summary="Show one action with its events",
)
async def show_action(
    server_id: str,
    request_id: str,
    v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    service: ServiceDep,
) -> dict[str, Any]:
    server = await _server(service, ctx, v, s, server_id)
    if not could_be_id(request_id):
        raise NotFound(f"Action {request_id} not found")
    action = (
        await s.execute(
            select(InstanceAction)
            .where(InstanceAction.server_id == server.id, InstanceAction.request_id == request_id)
            .order_by(InstanceAction.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if action is None:
        raise NotFound(f"Action {request_id} not found")
    events = (await _events(s, [action.id]))[action.id]
    out = _action(v, action, events)
    admin = ctx.is_cloud_admin
    if admin or v.at_least(51):
        project = action.project_id or server.project_id
        rendered = []
        for e in reversed(events):  # newest first, as Nova lists them
            ev: dict[str, Any] = {
                "event": e.event,
                "start_time": perfect_time(e.start_time),
                "finish_time": perfect_time(e.finish_time),
                "result": e.result,
            }
            if admin:
                ev["traceback"] = e.details
                if v.at_least(62):
                    ev["host"] = e.host
            if v.at_least(62):
                ev["hostId"] = host_id(project, e.host)
            rendered.append(ev)
        out["events"] = rendered
    return {"instanceAction": out}
