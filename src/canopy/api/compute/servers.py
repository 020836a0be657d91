"""Nova: servers. Create, list (filters, keyset pages), show, update, delete, power actions
and tags, each through ServerService in the request's own transaction. Never a cloud call:
a write records intent and wakes the controllers once it has committed.

Lists and one server's routes are here; create is in server_create.py, the list's query
parameters in server_query.py, actions and tags in server_actions.py, metadata in
server_metadata.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.auth import AuthDep, WriterDep, authenticate
from canopy.api.compute import server_actions, server_create, server_metadata
from canopy.api.compute.common import page_links, reject_nul_body
from canopy.api.compute.microversion import APIVersion, VersionDep, microversion
from canopy.api.compute.page_json import DetailWriter
from canopy.api.compute.plain_view import plain_view_context
from canopy.api.compute.schemas import UpdateBody
from canopy.api.compute.server_deps import ServiceDep
from canopy.api.compute.server_query import _server_query
from canopy.api.compute.server_view import ServerView, list_columns, view_of, views_of_plain
from canopy.api.compute.views import (
    ViewContext,
    server_basic,
    server_detail,
    view_context,
    view_reads,
)
from canopy.api.deps import (
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    get_clock,
    get_db,
    get_settings,
    wake_after_commit,
)
from canopy.api.fast_json import json_body, json_response
from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.services.servers import ServerService
from canopy.store.models import Server

# The order routes are registered in is the order they are matched in: create, lists (before
# /servers/{server_id}, so "detail" is no id), one server, then its actions and tags.
router = APIRouter()
router.include_router(server_create.router)


# List -----------------------------------------------------------------------------------


async def _list(request: Request, *, detail: bool) -> Response:
    """One page, read as plain rows of the columns it shows (one query), rendered to
    plain JSON types and encoded by orjson: no ORM entities, no response model.

    The route takes only the request: its microversion, caller and transaction are
    read here in the order the dependencies of the other routes read them (microversion,
    token, then the database), without FastAPI solving a dependency graph per request.
    On SQLite the rows come from the plain reads (store/plain_reads.py) and a session is
    opened only when the view needs more than the rows (tags, flavors, clouds)."""
    v = await microversion(request)
    ctx = await authenticate(request)
    settings = get_settings(request)
    db = get_db(request)
    service = ServerService(db, settings, get_clock(request))
    query = _server_query(request, v, ctx)
    columns = list_columns(detail=detail, admin=ctx.is_cloud_admin)
    plain = None if query is None else service.search_plain(ctx, query, columns)
    servers: Sequence[Any] = []
    path = "servers/detail" if detail else "servers"
    if plain is not None and detail:
        # The entries' JSON written from the rows (api/compute/page_json.py).
        if view_reads(v, ctx):
            ids = [row[0] for row in plain]
            # A member's tags and flavors on the plain reads too (api/compute/plain_view.py).
            found = None
            if db.plain_reads is not None:
                found = plain_view_context(db.plain_reads, request, settings, v, ctx, ids)
            if found is None:
                async with db.read() as s:
                    found = await view_context(s, request, settings, v, ctx, ids)
            vc = found
        else:
            vc = ViewContext(request, settings, v, ctx)
        assert query is not None  # a plain read is a query's
        nxt = [] if query.limit is None else page_links(
            request, settings, path, plain, query.limit, lambda row: row[0]
        )  # fmt: skip
        return json_body(DetailWriter(vc).page(plain, nxt))
    if plain is not None:
        servers = views_of_plain(plain, detail=detail)
        vc = ViewContext(request, settings, v, ctx)
    else:
        async with db.read() as s:
            if query is not None:
                servers = await service.search_rows(ctx, query, columns, session=s)
            if detail:
                servers = [ServerView._make(row) for row in servers]
            ids = [sv.id for sv in servers] if detail else []
            vc = await view_context(s, request, settings, v, ctx, ids)
    if detail:
        items = [server_detail(vc, sv) for sv in servers]
    else:
        items = [server_basic(vc, sv) for sv in servers]
    out: dict[str, Any] = {"servers": items}
    if query is not None and query.limit is not None:
        nxt = page_links(request, settings, path, servers, query.limit, lambda sv: sv.id)
        if nxt:
            out["servers_links"] = nxt
    return json_response(out)


# The response model documents the body (OpenAPI); the Response returned is sent as is.
@router.get("/servers", summary="List servers (id, name, links)", response_model=dict[str, Any])
async def list_servers(request: Request) -> Response:
    return await _list(request, detail=False)


@router.get("/servers/detail", summary="List servers with details", response_model=dict[str, Any])
async def list_servers_detail(request: Request) -> Response:
    return await _list(request, detail=True)


# One server -----------------------------------------------------------------------------


async def _show(
    request: Request,
    v: APIVersion,
    ctx: RequestContext,
    s: AsyncSession,
    settings: SettingsDep,
    server: Server,
) -> dict[str, Any]:
    shown = view_of(server)
    vc: ViewContext = await view_context(s, request, settings, v, ctx, [shown.id], show=True)
    return {"server": server_detail(vc, shown, show=True)}


@router.get("/servers/{server_id}", summary="Show a server")
async def show_server(
    server_id: str,
    request: Request,
    v: VersionDep,
    ctx: AuthDep,
    s: ReadSessionDep,
    settings: SettingsDep,
    service: ServiceDep,
) -> dict[str, Any]:
    server = await service.get(ctx, server_id, include_deleted=False, session=s)
    return await _show(request, v, ctx, s, settings, server)


@router.put("/servers/{server_id}", summary="Rename a server or set its description")
async def update_server(
    server_id: str,
    request: Request,
    v: VersionDep,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    service: ServiceDep,
    body: UpdateBody,
) -> dict[str, Any]:
    reject_nul_body(body.model_dump(by_alias=True))
    given = body.server.model_fields_set
    if "description" in given and not v.at_least(19):
        raise InvalidRequest(
            "Invalid input for field/attribute server. Additional properties are not allowed "
            "('description' was unexpected)"
        )
    if body.server.name is not None and body.server.name != body.server.name.strip():
        raise InvalidRequest(
            "Invalid input for field/attribute name. Leading and trailing whitespace is not "
            "allowed."
        )
    server = await service.update(
        ctx,
        server_id,
        name=body.server.name,
        description=body.server.description,
        set_description="description" in given,
        session=s,
    )
    return await _show(request, v, ctx, s, settings, server)


@router.delete("/servers/{server_id}", status_code=204, summary="Delete a server")
async def delete_server(
    server_id: str, _v: VersionDep, ctx: WriterDep, s: SessionDep, service: ServiceDep
) -> Response:
    await service.delete(ctx, server_id, session=s)
    wake_after_commit(s)
    return Response(status_code=204)


router.include_router(server_actions.router)
router.include_router(server_metadata.router)
