"""Nova: create servers (POST /servers). Checks what canopy cannot do (volumes, file
injection, forced hosts for non-admins) and records the request through ServerService."""

from __future__ import annotations

import secrets
import string
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import WriterDep
from canopy.api.compute.common import links, reject_nul_body, reservation_id
from canopy.api.compute.microversion import VersionDep
from canopy.api.compute.schemas import CreateBody, check_create
from canopy.api.compute.server_deps import ServiceDep
from canopy.api.deps import SessionDep, SettingsDep, wake_after_commit
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, InvalidRequest
from canopy.services.server_input import check_scheduler_hints
from canopy.services.servers import CreateServer
from canopy.store.models import Cloud, Keypair

router = APIRouter()


@router.post("/servers", status_code=202, summary="Create one or more servers")
async def create_server(
    request: Request,
    v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    service: ServiceDep,
    body: CreateBody,
) -> JSONResponse:
    reject_nul_body(body.model_dump(by_alias=True))
    check_create(body, v)
    srv = body.server
    image, from_volume = _image_ref(srv.imageRef, srv.block_device_mapping_v2, srv)
    zone = await _zone(s, ctx, srv.availability_zone, srv.host, srv.hypervisor_hostname)
    if srv.personality:
        raise InvalidRequest(
            "Personality files (file injection) are not supported; pass user_data instead."
        )
    if srv.trusted_image_certificates:
        raise InvalidRequest("trusted_image_certificates are not supported by canopy.")
    hints = check_scheduler_hints(body.hints if body.hints is not None else body.hints_legacy or {})
    group_id = hints.get("group")
    if srv.key_name is not None:
        # A keypair belongs to its user (Nova); the user must own the one named.
        owned = await s.execute(
            select(Keypair.id).where(Keypair.user_id == ctx.user_id, Keypair.name == srv.key_name)
        )
        if owned.scalar_one_or_none() is None:
            raise InvalidRequest("Invalid key_name provided.")
    description = srv.description if v.at_least(19) else srv.name
    req = CreateServer(
        name=srv.name,
        flavor=_id_from_href(str(srv.flavorRef)),
        image=image,
        availability_zone=zone,
        group_id=group_id or None,
        key_name=srv.key_name,
        metadata=dict(srv.metadata),
        min_count=srv.min_count,
        max_count=srv.max_count if srv.max_count is not None else srv.min_count,
        hints=hints,
        description=description,
        tags=tuple(srv.tags or ()),
        user_data=srv.user_data,
        config_drive=bool(srv.config_drive),
        boot_from_volume=from_volume,
    )
    servers = await service.create(ctx, req, session=s)
    wake_after_commit(s, "placement")  # the only loop a new server has work for
    if srv.return_reservation_id:
        return JSONResponse({"reservation_id": reservation_id(ctx.request_id)}, status_code=202)
    first = servers[0]
    server_links = links(request, settings, "servers", first.id)
    groups = [g.model_dump() for g in srv.security_groups or []] or [{"name": "default"}]
    out = {
        "id": first.id,
        "links": server_links,
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": groups,
        "adminPass": srv.adminPass if srv.adminPass is not None else _password(),
    }
    return JSONResponse(
        {"server": out}, status_code=202, headers={"Location": server_links[0]["href"]}
    )


def _id_from_href(ref: str) -> str:
    """Nova's `get_id_from_href`: a flavor or image may be given as a URL."""
    if "/" not in ref:
        return ref
    return urlsplit(ref).path.rstrip("/").split("/")[-1] or ref


def _image_ref(image_ref: str | None, bdms: Any, srv: Any) -> tuple[str, bool]:
    """The image to boot and whether it came through a block device mapping (boot from
    volume: Nova shows the server's image as "")."""
    if srv.block_device_mapping:
        if bdms:
            raise InvalidRequest(
                "Using different block_device_mapping syntaxes is not allowed in the same request."
            )
        raise InvalidRequest(
            "block_device_mapping (volumes) is not supported: canopy has no volume service."
        )
    image_bdm = None
    for bdm in bdms or []:
        source = bdm.source_type
        if source in ("volume", "snapshot") or bdm.volume_id or bdm.snapshot_id:
            raise InvalidRequest(
                f"Block device mapping source {source or 'volume'!r} is not supported: "
                "canopy has no volume service; boot from an image."
            )
        if source == "image" and image_bdm is None:
            image_bdm = bdm
    if image_ref:
        return _id_from_href(image_ref), False
    if image_bdm is not None and (image_bdm.uuid or image_bdm.image_id):
        return str(image_bdm.uuid or image_bdm.image_id), True
    raise InvalidRequest("Missing imageRef attribute")


async def _zone(
    s: AsyncSession,
    ctx: RequestContext,
    requested: str | None,
    host: str | None,
    node: str | None,
) -> str | None:
    """The availability zone (a cloud) to pin to, from `zone[:host[:node]]` and 2.74's
    host/hypervisor_hostname (both admin-only, as in Nova: a cloud is also the host)."""
    zone = requested
    forced: str | None = None
    if requested and ":" in requested:
        parts = requested.split(":")
        zone = parts[0] or None
        forced = next((p for p in parts[1:] if p), None)
        if forced and not ctx.is_cloud_admin:
            raise Forbidden(
                "Policy doesn't allow os_compute_api:servers:create:forced_host to be performed."
            )
    if host or node:
        if not ctx.is_cloud_admin:
            raise Forbidden(
                "Policy doesn't allow compute:servers:create:requested_destination to be performed."
            )
        forced = host or node
    if forced:
        if zone and zone != forced:
            raise InvalidRequest(
                f"Host {forced!r} is not in availability zone {zone!r}: a cloud is its own zone."
            )
        zone = forced
    if zone == "nova" and await s.get(Cloud, "nova") is None:
        return None  # Nova's default zone name: no preference
    return zone or None


def _password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))
