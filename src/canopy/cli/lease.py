"""`canopy lease find-slot`: the earliest window where N servers of a size can be reserved.

It reads the database as it is (like `canopy cloud list`) and runs the same search as
`POST /canopy/v1/leases/find-slot`, so the answer is what a lease create would accept now.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from canopy.bootstrap import open_existing
from canopy.cli.common import ConfigOpt, DataDirOpt, console, run, settings_from
from canopy.config import Settings
from canopy.domain.clock import SystemClock

app = typer.Typer(help="Leases (reservations of capacity ahead of time).", no_args_is_help=True)

WHEN = "UTC, 'YYYY-MM-DD HH:MM'"


async def _search(settings: Settings, body: dict[str, Any]) -> Any:
    from canopy.api.admin.lease_slots import answer_view
    from canopy.reservations.find_slot import find_slot

    db = await open_existing(settings)
    try:
        async with db.read() as s:
            q, size, answer = await find_slot(s, settings, SystemClock().now(), body)
    finally:
        await db.dispose()
    return answer_view(q, size, answer)


@app.command("find-slot")
def find_slot_command(
    duration: Annotated[str, typer.Option(help="length of the window: 90m, 8h, 2d, 1d12h")],
    flavor: Annotated[str | None, typer.Option(help="a public flavor's name or id")] = None,
    vcpus: Annotated[int | None, typer.Option(help="or a size: vcpus per server")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="and MB of RAM per server")] = None,
    disk_gb: Annotated[int | None, typer.Option(help="and GB of disk per server")] = None,
    count: Annotated[int, typer.Option(help="how many servers")] = 1,
    after: Annotated[str, typer.Option(help=f"earliest start ({WHEN}, or now)")] = "now",
    before: Annotated[
        str | None, typer.Option(help=f"the window ends by then ({WHEN}); default a week later")
    ] = None,
    affinity: Annotated[
        bool | None, typer.Option("--affinity/--no-affinity", help="all servers on one cloud")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Find the earliest window of --duration, after --after and ending by --before, where
    --count servers fit (placed as a lease create would place them). Nothing is held: a
    lease created at once at that start takes it."""
    body: dict[str, Any] = {"duration": duration, "count": count, "after": after}
    for key, value in (
        ("flavor", flavor),
        ("vcpus", vcpus),
        ("memory_mb", memory_mb),
        ("disk_gb", disk_gb),
        ("before", before),
        ("affinity", affinity),
    ):
        if value is not None:
            body[key] = value
    settings = settings_from(config, data_dir)
    view = run(_search(settings, body))  # a bad option: its 400's message, exit 2
    searched = view.searched
    size = view.size
    what = f"{size.count} x " + (
        size.flavor or f"{size.vcpus} vcpus / {size.memory_mb} MB / {size.disk_gb} GB"
    )
    if view.slot is None:
        where = "until " + (searched.until.strftime("%Y-%m-%d %H:%M") if searched.until else "-")
        if searched.complete:
            console.print(f"[yellow]No window[/] for {what} in that range.", soft_wrap=True)
        else:
            console.print(
                f"[yellow]No window found[/] for {what} {where}: the search stopped at its "
                f"bound after {searched.examined} starts; ask again with --after set to "
                "that time to go on.",
                soft_wrap=True,
            )
        if view.reason:
            console.print(f"[dim]at the first start: {view.reason}[/]", soft_wrap=True)
        raise typer.Exit(1)
    slot = view.slot
    console.print(
        f"[green]{slot.start_date} -> {slot.end_date}[/] (UTC) for {what}, "
        f"{slot.cost_per_hour:.6g}/hour, {slot.cost:.6g} in all",
        soft_wrap=True,
    )
    t = Table(title="where it would be held")
    for col in ("cloud", "servers", "price/hour each", "cost/hour", "why"):
        t.add_column(col, justify="right" if col in ("servers", "price/hour each") else "left")
    for c in slot.clouds:
        t.add_row(
            c.cloud,
            str(c.amount),
            f"{c.price_per_hour:.6g}",
            f"{c.cost_per_hour:.6g}",
            c.reason,
        )
    console.print(t)
    console.print(
        f"[dim]openstack reservation lease create --start-date '{slot.start_date}' "
        f"--end-date '{slot.end_date}' ...[/]",
        soft_wrap=True,
    )
