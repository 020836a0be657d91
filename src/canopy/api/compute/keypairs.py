"""Nova: os-keypairs. A user's keypairs: import, generate, show, list, delete.

Microversions: 2.2 adds `type` (ssh | x509) and answers create with 201 and delete with
204; 2.10 lets an admin act for another user (`user_id`); 2.35 pages lists by name
(`limit`, `marker`, `keypairs_links`); 2.75 refuses unknown query parameters; 2.92 refuses
to generate keys and allows '@' and '.' in names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from canopy.api.auth import AuthDep, WriterDep
from canopy.api.compute.microversion import APIVersion, VersionDep
from canopy.api.compute.params import first, non_negative, query, reject_unknown
from canopy.api.deps import ClockDep, DatabaseDep, ReadSessionDep, SessionDep, SettingsDep
from canopy.api.pagination import next_url
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, InvalidRequest
from canopy.services import keypairs as service
from canopy.store.models import Keypair

router = APIRouter()

MAX_LIMIT = 1000  # Nova's [api] max_limit
JsonBody = Annotated[dict[str, Any], Body()]


def _policy(action: str) -> Forbidden:
    return Forbidden(f"Policy doesn't allow os_compute_api:os-keypairs:{action} to be performed.")


def _target_user(ctx: RequestContext, v: APIVersion, requested: str | None, action: str) -> str:
    """Whose keypairs: the caller's, or (2.10+, admins) the one named by `user_id`."""
    if requested is None or not v.at_least(10) or requested == ctx.user_id:
        return ctx.user_id
    if not ctx.is_cloud_admin:
        raise _policy(action)
    return requested


def _nova_time(moment: datetime) -> str:
    """Nova's keypair timestamps: naive UTC with microseconds."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat()


def _summary(kp: Keypair, v: APIVersion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": kp.name,
        "public_key": kp.public_key,
        "fingerprint": kp.fingerprint,
    }
    if v.at_least(2):
        body["type"] = kp.type
    return body


def _detail(kp: Keypair, v: APIVersion) -> dict[str, Any]:
    return {
        **_summary(kp, v),
        "user_id": kp.user_id,
        "created_at": _nova_time(kp.created_at),
        "deleted": False,
        "deleted_at": None,
        "updated_at": None,
        "id": kp.id,
    }


def _query_keys(*, paged: bool) -> set[str]:
    return {"user_id", "limit", "marker"} if paged else {"user_id"}


@router.get("/os-keypairs", summary="List the caller's keypairs")
async def list_keypairs(
    request: Request, ctx: AuthDep, v: VersionDep, s: ReadSessionDep, settings: SettingsDep
) -> dict[str, Any]:
    params = query(request)
    reject_unknown(params, _query_keys(paged=True), v)
    user_id = _target_user(ctx, v, first(params, "user_id"), "index")
    limit: int | None = None
    marker: str | None = None
    if v.at_least(35):
        asked = non_negative(params, "limit")
        limit = MAX_LIMIT if asked is None else min(asked, MAX_LIMIT)
        marker = first(params, "marker")
    rows = await service.listing(s, user_id, limit=limit, marker=marker)
    body: dict[str, Any] = {"keypairs": [{"keypair": _summary(kp, v)} for kp in rows]}
    if limit is not None and rows and len(rows) == limit:
        href = next_url(request, settings, rows[-1].name)
        body["keypairs_links"] = [{"href": href, "rel": "next"}]
    return body


@router.post("/os-keypairs", summary="Import a public key, or generate a keypair")
async def create_keypair(
    body: JsonBody,
    response: Response,
    ctx: WriterDep,
    v: VersionDep,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> dict[str, Any]:
    kp_in = body.get("keypair")
    if set(body) - {"keypair"}:
        extra = sorted(set(body) - {"keypair"})
        raise InvalidRequest(
            f"Additional properties are not allowed ({', '.join(map(repr, extra))} "
            f"{'was' if len(extra) == 1 else 'were'} unexpected)"
        )
    if not isinstance(kp_in, dict):
        raise InvalidRequest(
            "Invalid input for field/attribute keypair. 'keypair' is a required property "
            "and must be an object."
        )
    allowed = {"name", "public_key"}
    if v.at_least(2):
        allowed.add("type")
    if v.at_least(10):
        allowed.add("user_id")
    extra = sorted(set(kp_in) - allowed)
    if extra:
        raise InvalidRequest(
            f"Invalid input for field/attribute keypair. Additional properties are not "
            f"allowed ({', '.join(map(repr, extra))} {'was' if len(extra) == 1 else 'were'} "
            "unexpected)"
        )
    name = kp_in.get("name")
    if not isinstance(name, str):
        raise InvalidRequest(
            "Invalid input for field/attribute name. 'name' is a required property of type "
            "'string'."
        )
    service.check_name(name, relaxed=v.at_least(92))
    public_key = kp_in.get("public_key")
    if public_key is not None and not isinstance(public_key, str):
        raise InvalidRequest(
            f"Invalid input for field/attribute public_key. Value: {public_key}. "
            f"{public_key!r} is not of type 'string'"
        )
    if public_key is None and v.at_least(92):
        raise InvalidRequest(
            "Invalid input for field/attribute keypair. 'public_key' is a required property"
        )
    key_type = kp_in.get("type", "ssh")
    if key_type not in service.TYPES:
        raise InvalidRequest(
            f"Invalid input for field/attribute type. Value: {key_type}. "
            f"{key_type!r} is not one of ['ssh', 'x509']"
        )
    requested = kp_in.get("user_id")
    if requested is not None and not isinstance(requested, str):
        raise InvalidRequest(
            f"Invalid input for field/attribute user_id. Value: {requested}. "
            f"{requested!r} is not of type 'string'"
        )
    user_id = _target_user(ctx, v, requested, "create")
    private_key: str | None = None
    if public_key is None:
        # Generation is CPU-heavy: answer a full quota or a taken name first, then generate
        # in a thread with no transaction open (on SQLite, not under the write lock).
        async with db.read() as s:
            await service.check_room(
                s, settings, project_id=ctx.project_id, user_id=user_id, name=name
            )
        private_key, public_key = await service.generate(key_type, user_id, clock.now())
    async with db.session() as s:
        new = await service.create(
            s,
            settings,
            project_id=ctx.project_id,
            user_id=user_id,
            name=name,
            key_type=key_type,
            public_key=public_key,
            private_key=private_key,
            now=clock.now(),
        )
    out: dict[str, Any] = {**_summary(new.keypair, v), "user_id": new.keypair.user_id}
    if new.private_key is not None:
        out["private_key"] = new.private_key
    response.status_code = 201 if v.at_least(2) else 200
    return {"keypair": out}


@router.get("/os-keypairs/{name}", summary="Show one of the caller's keypairs")
async def show_keypair(
    name: str, request: Request, ctx: AuthDep, v: VersionDep, s: ReadSessionDep
) -> dict[str, Any]:
    params = query(request)
    reject_unknown(params, _query_keys(paged=False), v)
    user_id = _target_user(ctx, v, first(params, "user_id"), "show")
    return {"keypair": _detail(await service.get(s, user_id, name), v)}


@router.delete(
    "/os-keypairs/{name}",
    summary="Delete one of the caller's keypairs (202 before 2.2, then 204)",
    response_class=Response,
)
async def delete_keypair(
    name: str, request: Request, ctx: WriterDep, v: VersionDep, s: SessionDep
) -> Response:
    params = query(request)
    reject_unknown(params, _query_keys(paged=False), v)
    user_id = _target_user(ctx, v, first(params, "user_id"), "delete")
    await service.delete(s, user_id, name)
    return Response(status_code=204 if v.at_least(2) else 202)
