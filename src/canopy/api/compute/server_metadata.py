"""Nova: a server's metadata (os-server-metadata), as Nova answers it.

PUT replaces all of it, POST merges into it, PUT on one key sets that key (the body names
exactly that key), DELETE on one key removes it. Canopy's record only: see
services/server_metadata.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from canopy.api.auth import AuthDep, WriterDep
from canopy.api.compute.common import reject_nul_body
from canopy.api.compute.microversion import VersionDep
from canopy.api.compute.schemas import MetadataBody, MetaItemBody
from canopy.api.compute.server_deps import ServiceDep
from canopy.api.deps import ReadSessionDep, SessionDep
from canopy.domain.errors import InvalidRequest

router = APIRouter()


@router.get("/servers/{server_id}/metadata", summary="List a server's metadata")
async def list_metadata(
    server_id: str, _v: VersionDep, ctx: AuthDep, s: ReadSessionDep, service: ServiceDep
) -> dict[str, Any]:
    return {"metadata": await service.metadata(ctx, server_id, session=s)}


@router.post("/servers/{server_id}/metadata", summary="Merge items into a server's metadata")
async def merge_metadata(
    server_id: str,
    _v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    service: ServiceDep,
    body: MetadataBody,
) -> dict[str, Any]:
    reject_nul_body(body.metadata)
    after = await service.set_metadata(ctx, server_id, body.metadata, replace=False, session=s)
    return {"metadata": after}


@router.put("/servers/{server_id}/metadata", summary="Replace a server's metadata")
async def replace_metadata(
    server_id: str,
    _v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    service: ServiceDep,
    body: MetadataBody,
) -> dict[str, Any]:
    reject_nul_body(body.metadata)
    after = await service.set_metadata(ctx, server_id, body.metadata, replace=True, session=s)
    return {"metadata": after}


@router.get("/servers/{server_id}/metadata/{key}", summary="Show one metadata item")
async def show_metadata_item(
    server_id: str,
    key: str,
    _v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    service: ServiceDep,
) -> dict[str, Any]:
    return {"meta": {key: await service.metadata_item(ctx, server_id, key, session=s)}}


@router.put("/servers/{server_id}/metadata/{key}", summary="Set one metadata item")
async def set_metadata_item(
    server_id: str,
    key: str,
    _v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    service: ServiceDep,
    body: MetaItemBody,
) -> dict[str, Any]:
    reject_nul_body(body.meta)
    if key not in body.meta:
        raise InvalidRequest("Request body and URI mismatch")
    await service.set_metadata(ctx, server_id, body.meta, replace=False, session=s)
    return {"meta": dict(body.meta)}


@router.delete(
    "/servers/{server_id}/metadata/{key}", status_code=204, summary="Remove one metadata item"
)
async def delete_metadata_item(
    server_id: str,
    key: str,
    _v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    service: ServiceDep,
) -> Response:
    await service.delete_metadata_item(ctx, server_id, key, session=s)
    return Response(status_code=204)
