"""What every command shares: loading settings with clear errors, and the Rich console."""

from __future__ import annotations

import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from canopy import event_loop
from canopy.config import ConfigError, Settings, load_settings
from canopy.domain.errors import CanopyError
from canopy.event_loop import LoopChoice

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default: $CANOPY_CONFIG, or none)"),
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Where SQLite files and keys live")
]


def fail(message: str, hint: str | None = None) -> NoReturn:
    # One line each, whatever the terminal's width: easy to read, grep and paste.
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        err_console.print(f"[dim]{escape(hint)}[/]", soft_wrap=True)
    raise typer.Exit(2)


def settings_from(config: Path | None, data_dir: Path | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    try:
        return load_settings(config, overrides=overrides or None)
    except ConfigError as e:
        fail(str(e), "fix the file and run the command again; see docs/configuration.md")


def run(coro: Coroutine[Any, Any, T], loop: LoopChoice = "asyncio") -> T:
    """Run a command's coroutine; the serving commands name their settings' `event_loop`
    (canopy/event_loop.py), the others run on the standard library's loop."""
    try:
        return event_loop.run(coro, loop)
    except CanopyError as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
