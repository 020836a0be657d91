"""What every scenario shares: the machine's description, scratch databases, a results table.

Figures are only comparable within one run on one machine, so each scenario reports its
result next to a baseline measured in the same run, and the ratio between the two.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import platform
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from canopy.gil import shorten_switches
from canopy.heap import freeze_startup_heap, pace_collector
from canopy.store.db import Database

PG_ADMIN_URL = os.environ.get(
    "CANOPY_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True, slots=True)
class Result:
    """One figure, its baseline from the same run, and how they compare."""

    scenario: str
    case: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


def cpu_seconds() -> float:
    """CPU time of this process, every thread, user plus system."""
    return time.process_time()


@contextlib.contextmanager
def served_process() -> Iterator[None]:
    """This process's collector and GIL switches set as a serving canopy process sets them
    once it is up (`canopy worker`, `canopy up`: cli/serve.py), and put back after, for
    the scenarios that run after it in the same process.

    A scenario that runs canopy's controllers or app in the benchmark's own process and
    leaves CPython's defaults measures full collections over a heap no canopy process
    scans (canopy/heap.py) and a 5 ms switch interval none runs with (canopy/gil.py).
    """
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    freeze_startup_heap()
    pace_collector()
    shorten_switches()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)


def quiet_logs() -> None:
    """Warnings only: the controllers log per step at INFO, which would dominate the run."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("canopy").setLevel(logging.WARNING)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(pg_version: str | None) -> dict[str, str]:
    import sqlalchemy

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version or "not reachable",
        "sqlalchemy": sqlalchemy.__version__,
        "load average at start": " ".join(f"{x:.2f}" for x in load),
    }


# PostgreSQL scratch databases ------------------------------------------------------------


def pg_base() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0]


def scratch_name(label: str) -> str:
    """A database name that is this process's own: canopy_bench_<pid>_<label>_<random>."""
    return f"canopy_bench_{os.getpid()}_{label}_{uuid.uuid4().hex[:6]}"


async def _admin(sql: str) -> None:
    admin = Database(PG_ADMIN_URL)
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await admin.dispose()


async def pg_version() -> str | None:
    """The server's version, or None when PostgreSQL is not reachable (its cases skip)."""
    db = Database(PG_ADMIN_URL)
    try:
        async with db.engine.connect() as conn:
            return str((await conn.execute(text("SHOW server_version"))).scalar_one())
    except Exception:
        return None
    finally:
        await db.dispose()


async def pg_create(name: str, template: str | None = None) -> str:
    """Create database `name` (a copy of `template` if given); return its URL."""
    assert name.startswith("canopy_bench_")
    copy = f' TEMPLATE "{template}"' if template else ""
    await _admin(f'CREATE DATABASE "{name}"{copy}')
    return f"{pg_base()}/{name}"


async def pg_drop(name: str) -> None:
    assert name.startswith("canopy_bench_")
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Output ----------------------------------------------------------------------------------


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def fmt_ratio(r: float | None) -> str:
    """2.50x; a small ratio also as a fraction, 0.0036x (1/280), to stay readable."""
    if r is None:
        return "-"
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"{r:.2g}x (1/{1 / r:,.0f})"


def table(results: Sequence[Result]) -> str:
    """A plain-text table: scenario, case, figure, baseline, ratio."""
    head = ("scenario", "case", "figure", "unit", "baseline", "ratio", "note")
    rows = [
        (
            r.scenario,
            r.case,
            fmt(r.value),
            r.unit,
            f"{fmt(r.baseline)} ({r.baseline_name})" if r.baseline is not None else "-",
            fmt_ratio(r.ratio),
            r.note,
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def print_machine(info: dict[str, Any]) -> None:
    for k, v in info.items():
        print(f"{k:>22}: {v}")
