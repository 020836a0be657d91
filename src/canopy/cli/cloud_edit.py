"""`canopy cloud add/set/disable/enable/remove`: clouds at run time, without a restart.

They write the `clouds` row (services/clouds.py, as the admin API does) and return; the
running workers pick the change up from the table within a few seconds. Options are given
as `--option KEY=VALUE` (the value read as a TOML value when it is one: `hosts=4`,
`zones=["us-east-1a"]`; else as text) or `--options-file` (a TOML table of the driver's
options, as `[clouds.<driver>]` in canopy.toml). Credentials are read from a file or from
standard input (`--credentials-file -`), never from the command line, where they would
land in the shell's history and the process list; they are sealed with the data dir's key
(or CANOPY_SECRET_KEY), which every process of the installation must share.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from canopy.bootstrap import open_database
from canopy.cli.common import ConfigOpt, DataDirOpt, console, fail, run, settings_from
from canopy.cli.writes import write_session
from canopy.config import Settings
from canopy.credentials import Vault, vault
from canopy.domain.clock import SystemClock
from canopy.services.clouds import CloudChanges, NewCloud, add_cloud, change_cloud, remove_cloud
from canopy.store.models import Cloud
from canopy.store.wakes import wake_after_commit

NameArg = Annotated[str, typer.Argument(help="cloud name (= availability zone)")]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="a driver option, KEY=VALUE (repeatable)"),
]
OptionsFileOpt = Annotated[
    Path | None, typer.Option("--options-file", help="a TOML file of the driver's options")
]
FlavorMapOpt = Annotated[
    list[str] | None,
    typer.Option("--flavor-map", help="canopy flavor = remote flavor, FLAVOR=REMOTE (repeatable)"),
]
CredentialsOpt = Annotated[
    str | None,
    typer.Option(
        "--credentials-file",
        help="a JSON or TOML file of credentials, or - for standard input (never an argument)",
    ),
]
_PICKED_UP = "running workers pick it up within a few seconds (no restart)"
_MAX_FILE = 1 << 20


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _pairs(items: list[str] | None, what: str, *, typed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{what} {item!r} is not KEY=VALUE")
        out[key.strip()] = _value(value.strip()) if typed else value.strip()
    return out


def _options(items: list[str] | None, file: Path | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if file is not None:
        try:
            options.update(tomllib.loads(file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            fail(f"{file}: cannot read the options: {e}")
    options.update(_pairs(items, "--option", typed=True))
    return options


def _credentials(source: str | None) -> dict[str, Any] | None:
    """The credentials from a file or stdin: JSON, else TOML. Never echoed on error."""
    if source is None:
        return None
    try:
        text = sys.stdin.read(_MAX_FILE) if source == "-" else Path(source).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read the credentials from {source}: {type(e).__name__}")
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            fail(f"the credentials in {source} are neither a JSON object nor TOML")
    if not isinstance(data, dict):
        fail(f"the credentials in {source} must be an object (a table)")
    return data


def _write(
    settings: Settings, step: Callable[[Any, Callable[[], Vault]], Coroutine[Any, Any, Cloud]]
) -> Cloud:
    async def go() -> Cloud:
        db = await open_database(settings)
        opened: list[Vault] = []

        def open_vault() -> Vault:
            if not opened:
                opened.append(vault(settings.secret_key, settings.data_path))
            return opened[0]

        try:
            async with write_session(db) as s:
                row = await step(s, open_vault)
                wake_after_commit(s)  # as the API's cloud edits: every loop looks again
                return row
        finally:
            await db.dispose()

    return run(go())


def add(
    name: NameArg,
    driver: Annotated[str, typer.Option("--driver", "-d", help="sim, ec2 or openstack")],
    tier: Annotated[int, typer.Option(help="0 = private, filled first; higher = burst")] = 0,
    disabled: Annotated[bool, typer.Option("--disabled", help="add it disabled")] = False,
    concurrency: Annotated[int, typer.Option(help="cloud calls at once")] = 50,
    option: OptionOpt = None,
    options_file: OptionsFileOpt = None,
    flavor_map: FlavorMapOpt = None,
    credentials_file: CredentialsOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a cloud (e.g. another AWS account or OpenStack) to the running installation."""
    settings = settings_from(config, data_dir)
    new = NewCloud(
        name=name,
        driver=driver,
        tier=tier,
        enabled=not disabled,
        concurrency=concurrency,
        flavor_map=_pairs(flavor_map, "--flavor-map", typed=False),
        options=_options(option, options_file),
        credentials=_credentials(credentials_file),
    )
    now = SystemClock().now()
    row = _write(settings, lambda s, v: add_cloud(s, new, v, now))
    stored = " with stored credentials" if row.credentials is not None else ""
    console.print(f"cloud [bold]{row.name}[/] added (driver {row.driver}, tier {row.tier}){stored}")
    console.print(f"[dim]{_PICKED_UP}[/]")


def set_(
    name: NameArg,
    tier: Annotated[int | None, typer.Option(help="a new tier")] = None,
    concurrency: Annotated[int | None, typer.Option(help="cloud calls at once")] = None,
    option: OptionOpt = None,
    unset: Annotated[
        list[str] | None, typer.Option("--unset", help="an option back to its default")
    ] = None,
    options_file: OptionsFileOpt = None,
    flavor_map: FlavorMapOpt = None,
    credentials_file: CredentialsOpt = None,
    clear_credentials: Annotated[
        bool, typer.Option("--clear-credentials", help="drop the stored credentials")
    ] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change a cloud added at run time (its options merge key by key)."""
    settings = settings_from(config, data_dir)
    options = _options(option, options_file)
    for key in unset or []:
        options[key] = None
    changes = CloudChanges(
        tier=tier,
        concurrency=concurrency,
        options=options or None,
        flavor_map=_pairs(flavor_map, "--flavor-map", typed=False) if flavor_map else None,
        credentials=_credentials(credentials_file),
        clear_credentials=clear_credentials,
    )
    now = SystemClock().now()
    row = _write(settings, lambda s, v: change_cloud(s, name, changes, v, now))
    console.print(f"cloud [bold]{row.name}[/] changed; {_PICKED_UP}")


def _enabled(name: str, enabled: bool, config: Path | None, data_dir: Path | None) -> None:
    settings = settings_from(config, data_dir)
    now = SystemClock().now()
    changes = CloudChanges(enabled=enabled)
    row = _write(settings, lambda s, v: change_cloud(s, name, changes, v, now))
    word = "enabled" if enabled else "disabled: it takes no new servers (its own keep running)"
    console.print(f"cloud [bold]{row.name}[/] {word}")


def disable(name: NameArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Stop placing new servers on a cloud added at run time."""
    _enabled(name, False, config, data_dir)


def enable(name: NameArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Place new servers on a cloud added at run time again."""
    _enabled(name, True, config, data_dir)


def remove(name: NameArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Remove a cloud added at run time: it drains (its servers can still be deleted)."""
    settings = settings_from(config, data_dir)
    now = SystemClock().now()
    row = _write(settings, lambda s, v: remove_cloud(s, name, now))
    console.print(
        f"cloud [bold]{row.name}[/] removed: it takes no new servers and drains; "
        "`canopy cloud list` shows how many servers it still holds"
    )


def register(app: typer.Typer) -> None:
    """Add these commands to `canopy cloud`."""
    app.command("add")(add)
    app.command("set")(set_)
    app.command("disable")(disable)
    app.command("enable")(enable)
    app.command("remove")(remove)
