"""Servers as the operator sees them: every project, desired vs observed, where and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import and_, false, or_, select

from canopy.api.admin.common import FAULTS, could_be_cloud, could_be_id
from canopy.api.deps import ReadSessionDep, SettingsDep
from canopy.api.pagination import DEFAULT_LIMIT, LimitQuery, MarkerQuery, Page, paginate
from canopy.domain.errors import InvalidRequest, NotFound
from canopy.domain.states import ServerStatus
from canopy.store.models import Cloud, Server

router = APIRouter(tags=["servers"], responses=FAULTS)


class Fault(BaseModel):
    code: int | None
    message: str
    created: datetime | None


class ServerView(BaseModel):
    id: str
    name: str
    project_id: str
    user_id: str
    flavor_id: str
    image_id: str | None
    status: str
    task_state: str | None
    phase: str
    desired_state: str
    observed_state: str | None
    observed_at: datetime | None = Field(
        description="when the observed state was last recorded as changed; how fresh it is "
        "shows in the cloud's last successful sync (last_ok_at)"
    )
    cloud: str | None
    zone: str | None = Field(
        description="The zone inside the cloud (an EC2 AZ, a child Nova's zone) the server "
        "was placed in or reported in; null when the cloud has none. Users see the cloud as "
        "the availability zone."
    )
    remote_id: str | None
    attempts: int
    fault: Fault | None
    created_at: datetime
    updated_at: datetime
    launched_at: datetime | None
    deleted: bool


class ServerDetail(ServerView):
    requested_zone: str | None
    group_id: str | None
    attempt_log: list[Any] = Field(
        description=(
            "Each failed attempt: the cloud, the zone inside it if any, and the error; "
            "`sent: true` where the attempt's creates may have landed with their answers "
            "lost (the next attempt looked the server up before creating)."
        )
    )
    addresses: dict[str, Any]
    retries: int
    next_attempt_at: datetime | None
    schedule_deadline: datetime | None
    claimed_by: str | None
    claim_expires_at: datetime | None
    terminated_at: datetime | None


def _fault(sv: Server) -> Fault | None:
    if sv.fault_message is None and sv.fault_code is None:
        return None
    return Fault(code=sv.fault_code, message=sv.fault_message or "", created=sv.fault_at)


def _summary(sv: Server) -> dict[str, Any]:
    return {
        "id": sv.id,
        "name": sv.name,
        "project_id": sv.project_id,
        "user_id": sv.user_id,
        "flavor_id": sv.flavor_id,
        "image_id": sv.image_id,
        "status": sv.status,
        "task_state": sv.task_state,
        "phase": sv.phase,
        "desired_state": sv.desired_state,
        "observed_state": sv.observed_state,
        "observed_at": sv.observed_at,
        "cloud": sv.cloud,
        "zone": sv.zone,
        "remote_id": sv.remote_id,
        "attempts": sv.attempts,
        "fault": _fault(sv),
        "created_at": sv.created_at,
        "updated_at": sv.updated_at,
        "launched_at": sv.launched_at,
        "deleted": sv.deleted,
    }


@router.get("/servers", summary="List servers of every project, newest first")
async def list_servers(
    request: Request,
    s: ReadSessionDep,
    settings: SettingsDep,
    status: Annotated[ServerStatus | None, Query(description="Only this status.")] = None,
    cloud: Annotated[str | None, Query(max_length=255, description="Only this cloud.")] = None,
    project_id: Annotated[str | None, Query(max_length=255)] = None,
    include_deleted: Annotated[bool, Query(description="Also soft-deleted rows.")] = False,
    limit: LimitQuery = DEFAULT_LIMIT,
    marker: MarkerQuery = None,
) -> Page[ServerView]:
    q = select(Server).order_by(Server.created_at.desc(), Server.id.desc()).limit(limit + 1)
    if status is not None:
        q = q.where(Server.status == status.value)
    if cloud is not None:
        if not could_be_cloud(cloud) or await s.get(Cloud, cloud) is None:
            raise InvalidRequest(f"Invalid input for query parameter cloud: no cloud {cloud}.")
        q = q.where(Server.cloud == cloud)
    if project_id is not None:
        q = (
            q.where(Server.project_id == project_id)
            if could_be_id(project_id)
            else q.where(false())
        )
    if not include_deleted and status != ServerStatus.DELETED:
        q = q.where(Server.deleted.is_(False))
    if marker is not None:
        last = await s.get(Server, marker) if could_be_id(marker) else None
        if last is None:
            raise InvalidRequest(f"marker [{marker}] not found")
        q = q.where(
            or_(
                Server.created_at < last.created_at,
                and_(Server.created_at == last.created_at, Server.id < last.id),
            )
        )
    rows = list((await s.execute(q)).scalars())
    kept, nxt = paginate(request, settings, rows, limit, lambda sv: sv.id)
    return Page[ServerView](items=[ServerView(**_summary(sv)) for sv in kept], next=nxt)


@router.get("/servers/{server_id}", summary="Show one server with its attempts and fault")
async def show_server(server_id: str, s: ReadSessionDep) -> ServerDetail:
    sv = await s.get(Server, server_id) if could_be_id(server_id) else None
    if sv is None:
        raise NotFound(f"Server {server_id} could not be found.")
    return ServerDetail(
        **_summary(sv),
        requested_zone=sv.requested_zone,
        group_id=sv.group_id,
        attempt_log=list(sv.attempt_log),
        addresses=dict(sv.addresses),
        retries=sv.retries,
        next_attempt_at=sv.next_attempt_at,
        schedule_deadline=sv.schedule_deadline,
        claimed_by=sv.claimed_by,
        claim_expires_at=sv.claim_expires_at,
        terminated_at=sv.terminated_at,
    )
