"""Subscriptions and their deliveries, in the caller's transaction (an API request's or a
CLI command's unit of work).

A subscription belongs to a project and gets that project's events; a cloud admin's may
be for every project (`all_projects`). Another project's subscription is "not found". The
signing secret is sealed with the installation's vault and shown once, in the answer to
the create; an AMQP URL's password is sealed the same way and never shown again.
"""

from __future__ import annotations

import builtins
import fnmatch
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.credentials import Vault
from canopy.domain.context import RequestContext
from canopy.domain.errors import Forbidden, InvalidRequest, NotFound, QuotaError
from canopy.notifications import amqp, events, targets
from canopy.notifications.settings import NotificationSettings
from canopy.store.models import Delivery, OutboxEvent, Subscription

KINDS = ("webhook", "amqp")
STATUSES = ("pending", "delivered", "dead", "skipped")
MAX_PER_PROJECT = 50
MAX_FILTERS = 32
_PATTERN = re.compile(r"^[a-z0-9_.*]{1,128}$")
_AMQP_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")


@dataclass(frozen=True)
class NewSubscription:
    kind: str
    url: str
    event_types: tuple[str, ...] = ()
    all_projects: bool = False
    exchange: str | None = None
    routing_key: str | None = None
    secret: str | None = None
    description: str = ""
    enabled: bool = True


@dataclass
class Sealed:
    """What a subscription's `sealed` column holds, opened."""

    secret: str = ""
    password: str = ""

    @classmethod
    def open(cls, vault: Vault, token: bytes) -> Sealed:
        data = vault.open(token)
        return cls(data.get("secret", ""), data.get("password", ""))


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether a subscription with these filters wants `event_type` ([]: every type)."""
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def _filters(patterns: Sequence[str]) -> builtins.list[str]:
    if len(patterns) > MAX_FILTERS:
        raise InvalidRequest(f"At most {MAX_FILTERS} event_types.")
    out = []
    for p in patterns:
        if not isinstance(p, str) or not _PATTERN.fullmatch(p):
            raise InvalidRequest(
                "event_types are event types or patterns of lower-case letters, digits, "
                "'.', '_' and '*' (e.g. 'lease.event.*')."
            )
        if not any(fnmatch.fnmatchcase(t, p) for t in events.TYPES):
            raise InvalidRequest(
                f"event_types: {p!r} matches no event canopy emits; they are: "
                + ", ".join(events.SHOWN)
            )
        out.append(p)
    return sorted(set(out))


async def create(
    s: AsyncSession,
    vault: Vault,
    settings: NotificationSettings,
    ctx: RequestContext,
    req: NewSubscription,
    now: datetime,
) -> tuple[Subscription, str | None]:
    """Create a subscription; returns it and its signing secret (None for AMQP)."""
    if req.kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}.")
    if req.all_projects and not ctx.is_cloud_admin:
        raise Forbidden("Only a cloud admin may subscribe to every project's events.")
    target = targets.parse(req.kind, req.url, settings.allowed_webhook_hosts)
    patterns = _filters(req.event_types)
    exchange = routing = None
    secret: str | None = None
    if req.kind == "webhook":
        if req.exchange is not None or req.routing_key is not None:
            raise InvalidRequest("exchange and routing_key are for amqp subscriptions.")
        secret = req.secret or secrets.token_urlsafe(32)
        if not 16 <= len(secret) <= 256 or not secret.isprintable():
            raise InvalidRequest("secret must be 16 to 256 printable characters.")
    else:
        if req.secret is not None:
            raise InvalidRequest("An amqp subscription has no secret (its URL's password).")
        exchange = req.exchange or amqp.DEFAULT_EXCHANGE
        routing = req.routing_key
        for name, value in (("exchange", exchange), ("routing_key", routing)):
            if value is not None and not _AMQP_NAME.fullmatch(value):
                raise InvalidRequest(f"{name} must be 1-255 of A-Z a-z 0-9 _ . : -")
    if len(req.description) > 255 or not req.description.isprintable():
        raise InvalidRequest("description must be at most 255 printable characters.")
    project = None if req.all_projects else ctx.project_id
    taken = await s.scalar(
        select(func.count()).select_from(Subscription).where(Subscription.project_id == project)
        if project is not None
        else select(func.count()).select_from(Subscription).where(Subscription.project_id.is_(None))
    )
    if (taken or 0) >= MAX_PER_PROJECT:
        raise QuotaError(f"Quota exceeded: at most {MAX_PER_PROJECT} subscriptions per project.")
    sub = Subscription(
        id=str(uuid.uuid4()),
        project_id=project,
        user_id=ctx.user_id,
        kind=req.kind,
        url=target.url,
        exchange=exchange,
        routing_key=routing,
        event_types=patterns,
        description=req.description,
        sealed=vault.seal({"secret": secret or "", "password": target.password or ""}),
        enabled=req.enabled,
        created_at=now,
        updated_at=now,
    )
    s.add(sub)
    await s.flush()
    return sub, secret


def _visible(ctx: RequestContext) -> Select[Subscription]:
    q = select(Subscription)
    if not ctx.is_cloud_admin:
        q = q.where(Subscription.project_id == ctx.project_id)
    return q


async def list(s: AsyncSession, ctx: RequestContext) -> builtins.list[Subscription]:
    q = _visible(ctx).order_by(Subscription.created_at, Subscription.id)
    return builtins.list((await s.execute(q)).scalars())


async def get(
    s: AsyncSession, ctx: RequestContext, sub_id: str, *, lock: bool = False
) -> Subscription:
    q = _visible(ctx).where(Subscription.id == sub_id)
    if lock:
        q = q.with_for_update()
    sub = (await s.execute(q)).scalar_one_or_none() if 0 < len(sub_id) <= 64 else None
    if sub is None:
        raise NotFound(f"Subscription {sub_id[:64]} could not be found.")
    return sub


async def counts(s: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Deliveries per subscription per status."""
    out: dict[str, dict[str, int]] = {i: {} for i in ids}
    if ids:
        rows = await s.execute(
            select(Delivery.subscription_id, Delivery.status, func.count())
            .where(Delivery.subscription_id.in_(builtins.list(ids)))
            .group_by(Delivery.subscription_id, Delivery.status)
        )
        for sid, status, n in rows:
            out[sid][status] = int(n)
    return out


async def delete(s: AsyncSession, ctx: RequestContext, sub_id: str) -> None:
    """Delete a subscription and its deliveries (pending ones are never sent)."""
    sub = await get(s, ctx, sub_id, lock=True)
    await s.delete(sub)
    await s.flush()


async def set_enabled(
    s: AsyncSession, ctx: RequestContext, sub_id: str, enabled: bool, now: datetime
) -> Subscription:
    """Pause or resume a subscription: paused, its deliveries wait (and new ones queue)."""
    sub = await get(s, ctx, sub_id, lock=True)
    sub.enabled = enabled
    sub.updated_at = now
    return sub


async def deliveries(
    s: AsyncSession,
    ctx: RequestContext,
    sub_id: str,
    *,
    status: str | None = None,
    limit: int = 100,
    after: int | None = None,
) -> builtins.list[tuple[Delivery, OutboxEvent]]:
    """A subscription's deliveries in outbox order (after delivery id `after`)."""
    await get(s, ctx, sub_id)
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}.")
    q = (
        select(Delivery, OutboxEvent)
        .join(OutboxEvent, OutboxEvent.id == Delivery.outbox_id)
        .where(Delivery.subscription_id == sub_id)
        .order_by(Delivery.id)
        .limit(limit)
    )
    if status is not None:
        q = q.where(Delivery.status == status)
    if after is not None:
        q = q.where(Delivery.id > after)
    return [(d, e) for d, e in await s.execute(q)]


async def replay(
    s: AsyncSession,
    ctx: RequestContext,
    sub_id: str,
    delivery_ids: Sequence[int] | None,
    now: datetime,
) -> int:
    """Send again: every dead delivery, or the ones named (dead, skipped or delivered).

    A replayed delivery goes out before the later ones of its subject, as the first time.
    """
    await get(s, ctx, sub_id, lock=True)
    return await _move(
        s,
        sub_id,
        delivery_ids,
        ("dead",) if delivery_ids is None else ("dead", "skipped", "delivered"),
        status="pending",
        retries=0,
        next_attempt_at=now,
        updated_at=now,
    )


async def skip(
    s: AsyncSession,
    ctx: RequestContext,
    sub_id: str,
    delivery_ids: Sequence[int] | None,
    now: datetime,
) -> int:
    """Give up on dead deliveries (all, or the ones named): their subjects move on."""
    await get(s, ctx, sub_id, lock=True)
    return await _move(s, sub_id, delivery_ids, ("dead",), status="skipped", updated_at=now)


async def _move(
    s: AsyncSession,
    sub_id: str,
    delivery_ids: Sequence[int] | None,
    from_statuses: Sequence[str],
    **values: object,
) -> int:
    q = update(Delivery).where(
        Delivery.subscription_id == sub_id, Delivery.status.in_(builtins.list(from_statuses))
    )
    if delivery_ids is not None:
        if len(delivery_ids) > 1000:
            raise InvalidRequest("At most 1000 deliveries at once.")
        q = q.where(Delivery.id.in_(builtins.list(delivery_ids)))
    result = await s.execute(q.values(**values).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
