"""`canopy cloud list/show`: what each cloud holds, costs and how healthy it is (the
commands that add and change clouds at run time are in cli/cloud_edit.py).

Both only read: they show the database as it is and never reconcile the config, so running
one with another config file changes nothing. A cloud the config names that the database
does not know yet is pointed out (it appears at the next start or `canopy db upgrade`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select

from canopy.bootstrap import open_existing
from canopy.cli.common import ConfigOpt, DataDirOpt, console, fail, run, settings_from
from canopy.config import Settings
from canopy.domain.clock import SystemClock
from canopy.domain.money import format_amount
from canopy.domain.share import total_of
from canopy.domain.states import Ability
from canopy.reconcile import CloudState, cloud_state
from canopy.store.models import CapacityBlock, Cloud, Flavor, Server

app = typer.Typer(help="Clouds behind canopy.", no_args_is_help=True)


def _util(c: Cloud) -> float:
    parts = [0.0]
    for used, cap in (
        (c.vcpus_claimed, c.vcpus_capacity),
        (c.ram_mb_claimed, c.ram_mb_capacity),
        (c.instances_claimed, c.instances_capacity),
    ):
        if cap:
            parts.append(used / cap)
    return max(parts)


Block = tuple[str, str, str, datetime, str]  # cloud, zone, flavor, until, reason


async def _load(
    settings: Settings, now: datetime | None = None
) -> tuple[list[Cloud], dict[str, int], list[Block]]:
    db = await open_existing(settings)
    blocks: list[Block] = []
    try:
        async with db.read() as s:
            q = select(Cloud).order_by(Cloud.tier, Cloud.name)
            clouds = list((await s.execute(q)).scalars())
            counts = {
                str(c): int(n)
                for c, n in await s.execute(
                    select(Server.cloud, func.count())
                    .where(Server.deleted.is_(False), Server.cloud.is_not(None))
                    .group_by(Server.cloud)
                )
            }
            if now is not None:
                bq = (
                    select(
                        CapacityBlock.cloud,
                        CapacityBlock.zone,
                        Flavor.name,
                        CapacityBlock.until,
                        CapacityBlock.reason,
                    )
                    .join(Flavor, Flavor.id == CapacityBlock.flavor_id)
                    .where(CapacityBlock.until > now)
                    .order_by(CapacityBlock.cloud, CapacityBlock.zone, Flavor.name)
                )
                blocks = [
                    (str(c), str(z), str(f), u, str(r)) for c, z, f, u, r in await s.execute(bq)
                ]
    finally:
        await db.dispose()
    return clouds, counts, blocks


def _health(c: Cloud, servers: int, now: datetime) -> str:
    state = cloud_state(c, servers)
    if state is CloudState.DRAINING:
        return f"[yellow]draining[/] ({servers} left)"
    if state is not CloudState.ENABLED:
        return f"[dim]{state.value}[/]"
    if c.blocklisted_until is not None and c.blocklisted_until > now:
        return "[red]blocklisted[/]"
    return "[green]healthy[/]" if c.healthy else f"[red]unhealthy[/] {c.health_message[:30]}"


@app.command("list")
def list_clouds(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Every cloud: tier, state and health, utilisation, hourly spend."""
    settings = settings_from(config, data_dir)
    clouds, counts, _ = run(_load(settings))
    now = SystemClock().now()
    t = Table(title="Clouds (each is an availability zone)")
    for col in ("name", "driver", "tier", "health", "servers", "vcpus", "utilisation", "$/hour"):
        t.add_column(col, justify="right" if col in ("tier", "servers", "$/hour") else "left")
    for c in clouds:
        health = _health(c, counts.get(c.name, 0), now)
        if c.capacity_updated_at is None:
            cap = "?"  # no worker has read the cloud's inventory yet
        else:
            cap = "∞" if c.vcpus_capacity is None else str(c.vcpus_capacity)
        t.add_row(
            c.name,
            c.driver,
            str(c.tier),
            health,
            str(counts.get(c.name, 0)),
            f"{c.vcpus_claimed}/{cap}",
            f"{_util(c):.0%}",
            format_amount(c.spend_per_hour_micros),
        )
    console.print(t)
    _unknown_to_the_database(settings, clouds)


def _unknown_to_the_database(settings: Settings, clouds: list[Cloud]) -> None:
    known = {c.name for c in clouds}
    missing = [c.name for c in settings.clouds if c.name not in known]
    if missing:
        console.print(
            f"[dim]configured but not in the database yet: {', '.join(missing)} (they are "
            "added at the next start, or by `canopy db upgrade`)[/]",
            soft_wrap=True,
        )


def _share(c: Cloud) -> dict[str, str]:
    """The cloud's total and what others use of it (capacity is the rest: canopy's)."""
    pairs = (
        (c.vcpus_capacity, c.vcpus_others),
        (c.ram_mb_capacity, c.ram_mb_others),
        (c.instances_capacity, c.instances_others),
    )
    return {
        "cloud total vcpus/ram_mb/instances": "/".join(
            str(total_of(mine, others)) for mine, others in pairs
        ),
        # "?": the cloud does not say what is free, so canopy may fill the whole total.
        "used by others vcpus/ram_mb/instances": "/".join(
            "?" if o is None else str(o) for _, o in pairs
        ),
    }


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="cloud name (= availability zone)")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """One cloud in detail. Credentials are never shown."""
    now = SystemClock().now()
    clouds, counts, blocks = run(_load(settings_from(config, data_dir), now))
    match = [c for c in clouds if c.name == name]
    if not match:
        fail(f"no cloud named {name!r}", "`canopy cloud list` shows the configured clouds")
    c = match[0]
    t = Table(show_header=False, title=f"cloud {c.name}")
    t.add_column("field", style="bold")
    t.add_column("value")
    rows = {
        "driver": c.driver,
        "source": "config file" if c.source == "config" else "added at run time",
        "tier": str(c.tier),
        "state": cloud_state(c, counts.get(c.name, 0)).value,
        "enabled": str(c.enabled),
        "healthy": f"{c.healthy} {c.health_message}".strip(),
        "last ok": str(c.last_ok_at or "-"),
        "blocklisted until": f"{c.blocklisted_until or '-'} {c.blocklist_reason}".strip(),
        "capacity vcpus/ram_mb/instances": (
            f"{c.vcpus_capacity}/{c.ram_mb_capacity}/{c.instances_capacity}"
            if c.capacity_updated_at is not None
            else "not read yet (a worker reads it at start)"
        ),
        **(_share(c) if c.capacity_updated_at is not None else {}),
        "claimed vcpus/ram_mb/instances": f"{c.vcpus_claimed}/{c.ram_mb_claimed}/"
        f"{c.instances_claimed}",
        "utilisation": f"{_util(c):.1%}",
        "spend per hour": format_amount(c.spend_per_hour_micros),
        "servers": str(counts.get(c.name, 0)),
        "credentials": "set (write-only, never shown)" if c.credentials else "none",
        "zones": "not asked yet" if c.zones is None else ", ".join(c.zones) or "none",
    }
    for cloud, zone, flavor, until, reason in blocks:
        if cloud == c.name:
            rows[f"blocked: {flavor} in {zone or 'every zone'}"] = f"until {until} {reason}"
    missing = c.abilities or {}
    for ability in Ability:
        why = missing.get(ability.value)
        rows[f"can {ability.value}"] = "yes" if why is None else f"no: {why}"
    for k, v in rows.items():
        t.add_row(k, v)
    console.print(t)
