"""`canopy subscription create/list/show/delete/replay/skip`: notifications, for operators.

Straight into the database, as a cloud admin (no API call, no token): a subscription is for
every project's events unless `--project` names one. The signing secret is printed once,
by `create`, and never again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.bootstrap import open_database, open_existing
from canopy.cli.common import ConfigOpt, DataDirOpt, console, fail, run, settings_from
from canopy.cli.writes import write_session
from canopy.config import Settings
from canopy.credentials import vault
from canopy.domain.clock import SystemClock
from canopy.domain.context import RequestContext
from canopy.notifications import subscriptions as service
from canopy.notifications.subscriptions import NewSubscription
from canopy.store.models import Project, Subscription
from canopy.store.wakes import wake_after_commit

T = TypeVar("T")
app = typer.Typer(help="Notifications: webhooks and AMQP.", no_args_is_help=True)

IdArg = Annotated[str, typer.Argument(help="The subscription's id")]
# The operator: a cloud admin, who sees and manages every project's subscriptions.
OPERATOR = RequestContext(
    project_id="", user_id="canopy-cli", roles=frozenset({"admin"}), is_admin_project=True
)


async def _with(
    settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]], *, write: bool
) -> T:
    db = await (open_database(settings) if write else open_existing(settings))
    try:
        async with write_session(db) if write else db.read() as s:
            return await fn(s)
    finally:
        await db.dispose()


@app.command("create")
def create(
    url: Annotated[str, typer.Argument(help="http(s)://... or amqp(s)://user:pass@host/vhost")],
    event_types: Annotated[
        list[str] | None,
        typer.Option("--event-type", "-e", help="A type or pattern ('lease.*'); repeatable"),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Only this project's events (name or id); default: all")
    ] = None,
    exchange: Annotated[str | None, typer.Option(help="amqp: the topic exchange")] = None,
    routing_key: Annotated[str | None, typer.Option(help="amqp: the routing key")] = None,
    description: Annotated[str, typer.Option(help="A note for people")] = "",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Subscribe a webhook or an AMQP exchange; a webhook's secret is printed once."""
    settings = settings_from(config, data_dir)
    kind = "amqp" if url.startswith(("amqp://", "amqps://")) else "webhook"

    async def _go(s: AsyncSession) -> tuple[Subscription, str | None]:
        ctx = OPERATOR
        if project is not None:
            found = await s.scalar(
                select(Project.id).where(or_(Project.id == project, Project.name == project))
            )
            if found is None:
                fail(f"no project {project!r}", "`canopy project list` shows them")
            ctx = RequestContext(
                project_id=found,
                user_id=OPERATOR.user_id,
                roles=OPERATOR.roles,
                is_admin_project=True,
            )
        req = NewSubscription(
            kind=kind,
            url=url,
            event_types=tuple(event_types or ()),
            all_projects=project is None,
            exchange=exchange,
            routing_key=routing_key,
            description=description,
        )
        key = vault(settings.secret_key, settings.data_path)
        return await service.create(s, key, settings.notifications, ctx, req, SystemClock().now())

    sub, secret = run(_with(settings, _go, write=True))
    console.print(f"[green]subscribed[/] {sub.kind} {sub.url} ({sub.id})")
    if secret is not None:
        console.print(f"signing secret (shown once, keep it): [bold]{secret}[/]", soft_wrap=True)


@app.command("list")
def list_subscriptions(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Every subscription, with its deliveries by status."""
    settings = settings_from(config, data_dir)

    async def _go(s: AsyncSession) -> tuple[list[Subscription], dict[str, dict[str, int]]]:
        subs = await service.list(s, OPERATOR)
        return subs, await service.counts(s, [x.id for x in subs])

    subs, counts = run(_with(settings, _go, write=False))
    t = Table(title="Subscriptions")
    for col in ("id", "kind", "url", "project", "events", "enabled", "pending", "dead"):
        t.add_column(col)
    for x in subs:
        c = counts.get(x.id, {})
        t.add_row(
            x.id,
            x.kind,
            x.url,
            x.project_id or "[dim]all[/]",
            ", ".join(x.event_types) or "[dim]all[/]",
            "yes" if x.enabled else "[yellow]paused[/]",
            str(c.get("pending", 0)),
            f"[red]{c['dead']}[/]" if c.get("dead") else "0",
        )
    console.print(t)


@app.command("show")
def show(
    sub_id: IdArg,
    dead: Annotated[bool, typer.Option("--dead", help="List the dead deliveries")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """One subscription (never its secret), and its dead deliveries with --dead."""
    settings = settings_from(config, data_dir)

    async def _go(s: AsyncSession) -> tuple[Subscription, dict[str, int], list[list[str]]]:
        sub = await service.get(s, OPERATOR, sub_id)
        counts = (await service.counts(s, [sub.id]))[sub.id]
        rows = []
        if dead:
            for d, e in await service.deliveries(s, OPERATOR, sub_id, status="dead"):
                rows.append(
                    [str(d.id), e.event_type, d.subject, str(d.retries), d.last_error or ""]
                )
        return sub, counts, rows

    sub, counts, rows = run(_with(settings, _go, write=False))
    t = Table(show_header=False, title=f"subscription {sub.id}")
    t.add_column("field", style="bold")
    t.add_column("value")
    for k, v in {
        "kind": sub.kind,
        "url": sub.url,
        "exchange / routing key": f"{sub.exchange or '-'} / {sub.routing_key or 'default'}",
        "project": sub.project_id or "all projects",
        "event types": ", ".join(sub.event_types) or "all",
        "enabled": str(sub.enabled),
        "deliveries": ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none",
        "description": sub.description,
    }.items():
        t.add_row(k, v)
    console.print(t)
    if rows:
        d = Table(title="dead deliveries (replay or skip them)")
        for col in ("id", "event", "subject", "attempts", "last error"):
            d.add_column(col)
        for r in rows:
            d.add_row(*r)
        console.print(d)


@app.command("delete")
def delete(sub_id: IdArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Unsubscribe (pending deliveries are dropped)."""
    settings = settings_from(config, data_dir)

    async def _go(s: AsyncSession) -> None:
        await service.delete(s, OPERATOR, sub_id)

    run(_with(settings, _go, write=True))
    console.print(f"[green]deleted[/] subscription {sub_id}")


DeliveryOpt = Annotated[
    list[int] | None,
    typer.Option("--delivery", "-d", help="A delivery id (repeatable); default: every dead one"),
]


@app.command("replay")
def replay(
    sub_id: IdArg,
    delivery: DeliveryOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Send dead deliveries (or the ones named) again, before the later ones of their subject."""
    settings = settings_from(config, data_dir)

    async def _go(s: AsyncSession) -> int:
        n = await service.replay(s, OPERATOR, sub_id, delivery, SystemClock().now())
        wake_after_commit(s)  # as the API's replay: the notifications loop sends them now
        return n

    n = run(_with(settings, _go, write=True))
    console.print(f"[green]replaying[/] {n} deliveries (a worker sends them)")


@app.command("skip")
def skip(
    sub_id: IdArg,
    delivery: DeliveryOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Give up on dead deliveries: the later events of their subjects go out."""
    settings = settings_from(config, data_dir)

    async def _go(s: AsyncSession) -> int:
        n = await service.skip(s, OPERATOR, sub_id, delivery, SystemClock().now())
        wake_after_commit(s)  # as the API's skip: the notifications loop sends them now
        return n

    n = run(_with(settings, _go, write=True))
    console.print(f"[green]skipped[/] {n} deliveries")
