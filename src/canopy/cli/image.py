"""`canopy image create/list`: register canopy-wide images and see where each one boots."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from canopy.bootstrap import open_database, open_existing
from canopy.cli.common import ConfigOpt, DataDirOpt, console, fail, run, settings_from
from canopy.cli.writes import write_session
from canopy.domain.clock import SystemClock
from canopy.services import images as image_service
from canopy.services.images import Location
from canopy.store.models import Cloud, Image
from canopy.store.wakes import wake_after_commit

app = typer.Typer(help="Images: one name, each cloud's own id for it.", no_args_is_help=True)

MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        "-m",
        help="CLOUD=REMOTE_ID: the image's id on that cloud (repeat for each cloud). "
        "Sim clouds boot any image without one.",
    ),
]
IdOpt = Annotated[str | None, typer.Option("--id", help="The image's UUID (default: a new one)")]


def parse_maps(maps: list[str]) -> dict[str, str]:
    """`["aws=ami-1", "os=abc"]` -> {"aws": "ami-1", "os": "abc"}, or a clear error."""
    out: dict[str, str] = {}
    for item in maps:
        cloud, sep, remote = item.partition("=")
        cloud, remote = cloud.strip(), remote.strip()
        if not sep or not cloud or not remote:
            fail(f"--map {item!r}: expected CLOUD=REMOTE_ID", "e.g. --map aws-us-east-1=ami-0abc")
        if cloud in out and out[cloud] != remote:
            fail(f"--map: cloud {cloud!r} is given twice ({out[cloud]!r} and {remote!r})")
        out[cloud] = remote
    return out


def _where(locations: list[Location]) -> str:
    if not locations:
        return "[yellow]nowhere yet[/] (map it with --map)"
    return ", ".join(
        f"{loc.cloud} [dim](any image)[/]" if loc.implicit else f"{loc.cloud}={loc.remote_image}"
        for loc in locations
    )


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The image's name, as users will ask for it")],
    maps: MapOpt = None,
    image_id: IdOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Register an image and its id on each cloud (no API call: straight into the database)."""
    mapping = parse_maps(maps or [])
    settings = settings_from(config, data_dir)

    async def _go() -> tuple[Image, list[Location], list[str]]:
        db = await open_database(settings)
        try:
            async with db.read() as s:
                if (await s.execute(select(Cloud.name).limit(1))).first() is None:
                    fail(
                        "no clouds in the database yet",
                        "start canopy once (`canopy up`) or run `canopy db upgrade` first",
                    )
            async with write_session(db) as s:
                img = await image_service.register(
                    s, name=name, mapping=mapping, now=SystemClock().now(), image_id=image_id
                )
                wake_after_commit(s)  # as the API's: servers waiting for it may now fit
                locations = (await image_service.locations(s, [img])).get(img.id, [])
                # Whether an unmapped image boots on a cloud is the driver's to say, read
                # by the cloud's inventory; before the first one, canopy does not know yet.
                unread = (
                    await s.scalars(
                        select(Cloud.name)
                        .where(Cloud.enabled.is_(True), Cloud.capacity_updated_at.is_(None))
                        .order_by(Cloud.name)
                    )
                ).all()
            shown = {loc.cloud for loc in locations}
            return img, locations, [c for c in unread if c not in shown]
        finally:
            await db.dispose()

    img, locations, unread = run(_go())
    console.print(f"[green]registered[/] image [bold]{img.name}[/] ({img.id})")
    if locations or not unread:
        console.print(f"boots on: {_where(locations)}")
    if unread:
        console.print(
            f"not known yet on: {', '.join(unread)} (whether a cloud boots an unmapped image"
            " is read by its inventory, when `canopy up` or a worker starts)"
        )


@app.command("list")
def list_images(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Every image and the clouds it boots on."""
    settings = settings_from(config, data_dir)

    async def _go() -> tuple[list[Image], dict[str, list[Location]]]:
        db = await open_existing(settings)
        try:
            async with db.read() as s:
                rows = list((await s.execute(select(Image).order_by(Image.name))).scalars())
                return rows, await image_service.locations(s, rows)
        finally:
            await db.dispose()

    rows, locations = run(_go())
    t = Table(title="Images")
    for col in ("name", "id", "status", "boots on"):
        t.add_column(col)
    for img in rows:
        t.add_row(img.name, img.id, img.status, _where(locations.get(img.id, [])))
    console.print(t)
