"""Subscriptions to notifications at /canopy/v1/subscriptions (docs/notifications.md).

A project's members manage its subscriptions and its readers look at them; a cloud admin
sees every project's and may subscribe to every project's events (`all_projects`). The
signing secret is in the create's answer and nowhere else, ever.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from canopy.api.admin.common import FAULTS, Strict
from canopy.api.auth import AuthDep, WriterDep, authenticate
from canopy.api.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, wake_after_commit
from canopy.api.pagination import DEFAULT_LIMIT, LimitQuery, Page, paginate
from canopy.credentials import Vault, vault
from canopy.domain.errors import InvalidRequest
from canopy.notifications import subscriptions as service
from canopy.notifications.subscriptions import NewSubscription
from canopy.store.models import Delivery, OutboxEvent, Subscription

PREFIX = "/canopy/v1/subscriptions"
router = APIRouter(
    prefix=PREFIX,
    tags=["subscriptions"],
    responses=FAULTS,
    dependencies=[Depends(authenticate)],  # a 401 before anything else
)

Short = Annotated[str, Field(max_length=255)]


class SubscriptionCreate(Strict):
    kind: Literal["webhook", "amqp"]
    url: str = Field(
        max_length=2048,
        description="webhook: http(s)://...; amqp: amqp(s)://user:password@host:port/vhost "
        "(the password is sealed and never shown again).",
    )
    event_types: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list,
        max_length=32,
        description="Event types or patterns ('lease.*'); empty: every type.",
    )
    all_projects: bool = Field(
        default=False, description="Every project's events (a cloud admin only)."
    )
    exchange: Short | None = Field(default=None, description="amqp: default 'canopy'.")
    routing_key: Short | None = Field(
        default=None, description="amqp: default 'notifications.<priority>', as oslo."
    )
    secret: Annotated[str, Field(min_length=16, max_length=256)] | None = Field(
        default=None, description="webhook: the signing secret; default a new random one."
    )
    description: Short = ""
    enabled: bool = True


class SubscriptionUpdate(Strict):
    enabled: bool


class SubscriptionView(BaseModel):
    id: str
    project_id: str | None = Field(description="null: every project's events.")
    kind: str
    url: str
    exchange: str | None
    routing_key: str | None
    event_types: list[str]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    deliveries: dict[str, int] = Field(description="Deliveries by status (dead ones wait).")


class SubscriptionCreated(SubscriptionView):
    secret: str | None = Field(
        description="The webhook signing secret: shown here once, never again (null: amqp)."
    )


class SubscriptionList(BaseModel):
    items: list[SubscriptionView]


class DeliveryView(BaseModel):
    id: int
    event_id: str
    event_type: str
    subject: str
    sequence: int = Field(description="The event's outbox position.")
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


MAX_ID = 2**63 - 1  # the largest delivery id a database column holds

DeliveryId = Annotated[int, Field(ge=1, le=MAX_ID)]


class Selection(Strict):
    deliveries: list[DeliveryId] | None = Field(
        default=None, max_length=1000, description="Delivery ids; null: every dead one."
    )


class Moved(BaseModel):
    count: int


def get_vault(request: Request) -> Vault:
    found: Vault | None = getattr(request.app.state, "notification_vault", None)
    if found is None:
        settings = request.app.state.settings
        found = vault(settings.secret_key, settings.data_path)
        request.app.state.notification_vault = found
    return found


VaultDep = Annotated[Vault, Depends(get_vault)]


def _view(sub: Subscription, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": sub.id,
        "project_id": sub.project_id,
        "kind": sub.kind,
        "url": sub.url,
        "exchange": sub.exchange,
        "routing_key": sub.routing_key,
        "event_types": list(sub.event_types),
        "description": sub.description,
        "enabled": sub.enabled,
        "created_at": sub.created_at,
        "updated_at": sub.updated_at,
        "deliveries": counts,
    }


def _delivery(d: Delivery, e: OutboxEvent) -> DeliveryView:
    return DeliveryView(
        id=d.id,
        event_id=e.event_id,
        event_type=e.event_type,
        subject=d.subject,
        sequence=e.id,
        status=d.status,
        attempts=d.retries,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_error=d.last_error,
        delivered_at=d.delivered_at,
        created_at=d.created_at,
    )


@router.post("", status_code=201, summary="Subscribe to notifications")
async def create_subscription(
    body: SubscriptionCreate,
    ctx: WriterDep,
    s: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    v: VaultDep,
) -> SubscriptionCreated:
    req = NewSubscription(
        kind=body.kind,
        url=body.url,
        event_types=tuple(body.event_types),
        all_projects=body.all_projects,
        exchange=body.exchange,
        routing_key=body.routing_key,
        secret=body.secret,
        description=body.description,
        enabled=body.enabled,
    )
    sub, secret = await service.create(s, v, settings.notifications, ctx, req, clock.now())
    return SubscriptionCreated(**_view(sub, {}), secret=secret)


@router.get("", summary="List subscriptions (a cloud admin: every project's)")
async def list_subscriptions(ctx: AuthDep, s: ReadSessionDep) -> SubscriptionList:
    subs = await service.list(s, ctx)
    counts = await service.counts(s, [x.id for x in subs])
    return SubscriptionList(items=[SubscriptionView(**_view(x, counts[x.id])) for x in subs])


@router.get("/{subscription_id}", summary="Show a subscription (never its secret)")
async def show_subscription(
    subscription_id: str, ctx: AuthDep, s: ReadSessionDep
) -> SubscriptionView:
    sub = await service.get(s, ctx, subscription_id)
    counts = await service.counts(s, [sub.id])
    return SubscriptionView(**_view(sub, counts[sub.id]))


@router.patch("/{subscription_id}", summary="Pause or resume a subscription")
async def update_subscription(
    subscription_id: str, body: SubscriptionUpdate, ctx: WriterDep, s: SessionDep, clock: ClockDep
) -> SubscriptionView:
    sub = await service.set_enabled(s, ctx, subscription_id, body.enabled, clock.now())
    counts = await service.counts(s, [sub.id])
    wake_after_commit(s)
    return SubscriptionView(**_view(sub, counts[sub.id]))


@router.delete("/{subscription_id}", status_code=204, summary="Unsubscribe")
async def delete_subscription(subscription_id: str, ctx: WriterDep, s: SessionDep) -> Response:
    await service.delete(s, ctx, subscription_id)
    return Response(status_code=204)


@router.get("/{subscription_id}/deliveries", summary="A subscription's deliveries, in outbox order")
async def list_deliveries(
    request: Request,
    subscription_id: str,
    ctx: AuthDep,
    s: ReadSessionDep,
    settings: SettingsDep,
    status: Annotated[
        Literal["pending", "delivered", "dead", "skipped"] | None,
        Query(description="Only this status (dead: the ones waiting for a replay or a skip)."),
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    marker: Annotated[
        str | None, Query(max_length=20, description="The last delivery id of the last page.")
    ] = None,
) -> Page[DeliveryView]:
    after = None
    if marker is not None:
        if not (marker.isascii() and marker.isdigit()) or int(marker) > MAX_ID:
            raise InvalidRequest("Invalid input for query parameter marker: not a delivery id.")
        after = int(marker)
    rows = await service.deliveries(
        s, ctx, subscription_id, status=status, limit=limit + 1, after=after
    )
    kept, nxt = paginate(request, settings, rows, limit, lambda r: str(r[0].id))
    return Page[DeliveryView](items=[_delivery(d, e) for d, e in kept], next=nxt)


@router.post("/{subscription_id}/replay", summary="Send dead (or named) deliveries again")
async def replay_deliveries(
    subscription_id: str, body: Selection, ctx: WriterDep, s: SessionDep, clock: ClockDep
) -> Moved:
    n = await service.replay(s, ctx, subscription_id, body.deliveries, clock.now())
    wake_after_commit(s)
    return Moved(count=n)


@router.post("/{subscription_id}/skip", summary="Give up on dead deliveries")
async def skip_deliveries(
    subscription_id: str, body: Selection, ctx: WriterDep, s: SessionDep, clock: ClockDep
) -> Moved:
    n = await service.skip(s, ctx, subscription_id, body.deliveries, clock.now())
    wake_after_commit(s)
    return Moved(count=n)


def subscriptions_router() -> APIRouter:
    return router
