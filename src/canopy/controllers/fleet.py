"""A worker's drivers, kept in step with the `clouds` table (clouds at run time).

Level-triggered: each pass reads every cloud's name, owner, `generation` and whether it is
removed, and compares that with the drivers the worker holds:

- a cloud with no driver here (added at run time, or by another process's config) gets one,
  built from the settings its row keeps and its stored credentials, opened from the vault;
- a cloud whose `generation` moved (its options or credentials changed) gets a new driver;
- a removed cloud keeps its driver while it holds servers (it drains: deletes and sync go
  on), and loses it once it holds none; a disabled cloud keeps its driver (its servers can
  still be stopped, started and deleted; placement skips it, reading the table).

Drivers the worker was started with, for clouds from its config, are kept as they are
until their generation moves. A cloud whose driver cannot be built (settings that no
longer validate, credentials sealed under another key, a clouds.yaml entry missing) is
marked unhealthy with the reason, which never holds a secret, and tried again when its
generation moves. A replaced or dropped driver is not closed at once, since a call may
still be running on it: it is closed by the first pass after twice
`[controllers] call_timeout_seconds` (every call is cancelled at that timeout), or when
the worker stops, whichever comes first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, exists, select

from canopy.controllers.runtime import Runtime
from canopy.credentials import SecretKeyError, Vault, vault
from canopy.domain.errors import CloudError
from canopy.providers.base import Compute
from canopy.providers.registry import build_driver, settings_from_stored
from canopy.store.models import Cloud, Server
from canopy.store.plans import rare

log = logging.getLogger("canopy.fleet")


@dataclass(frozen=True, slots=True)
class _Seen:
    name: str
    source: str
    generation: int
    removed_at: datetime | None
    has_servers: bool
    stored: dict[str, Any] | None


class Fleet:
    """Builds, rebuilds and drops a worker's drivers from the clouds table."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._built: dict[str, int] = {}  # cloud -> generation its driver was built from
        self._failed: dict[str, int] = {}  # cloud -> generation that could not be built
        self._retired: list[tuple[datetime, Compute]] = []  # (close after, driver)
        self._vault: Vault | None = None

    def _open_vault(self) -> Vault:
        if self._vault is None:
            s = self.rt.settings
            self._vault = vault(s.secret_key, s.data_path)
        return self._vault

    async def _read(self) -> list[_Seen]:
        # One row by the cloud's index (no index of live rows leads with `deleted`:
        # migration 0027; tests/controllers/test_fleet_plan.py pins the plan). `rare`:
        # after ANALYZE, with one cloud holding every server, SQLite took the cloud's
        # index for unselective and scanned the table, through all of it for the empty
        # cloud (40-55 ms a pass at 100,000 servers). EXISTS stops at the first row.
        live = exists().where(and_(rare(Server.cloud == Cloud.name), Server.deleted.is_(False)))
        async with self.rt.db.read() as s:
            rows = await s.execute(
                select(
                    Cloud.name,
                    Cloud.source,
                    Cloud.generation,
                    Cloud.removed_at,
                    live.label("has_servers"),
                    Cloud.driver_settings,
                ).order_by(Cloud.name)
            )
            return [_Seen(n, src, int(g or 0), r, bool(h), st) for n, src, g, r, h, st in rows]

    async def refresh(self) -> list[str]:
        """One pass; the clouds whose driver is new or rebuilt (their inventory is due)."""
        rt = self.rt
        await self._close_idle()
        seen = await self._read()
        changed: list[str] = []
        names = set()
        for c in seen:
            names.add(c.name)
            wanted = c.removed_at is None or c.has_servers
            have = c.name in rt.drivers
            if not wanted:
                if have:
                    self._retire(c.name, "removed and empty")
                continue
            known = self._built.get(c.name)
            if have and known is None and c.source == "config":
                self._built[c.name] = c.generation  # built at start from this config
                continue
            if have and known == c.generation:
                continue
            if self._failed.get(c.name) == c.generation:
                continue
            if await self._build(c):
                changed.append(c.name)
        for name in [n for n in rt.drivers if n not in names]:
            self._retire(name, "no longer in the clouds table")
        if changed:
            rt.notify("inventory", "placement")
        return changed

    async def _build(self, c: _Seen) -> bool:
        rt = self.rt
        try:
            if c.stored is None:
                raise ValueError("its settings were never stored")
            cfg = settings_from_stored(c.name, c.stored)
            credentials = await self._credentials(c.name)
            driver = build_driver(rt.settings, cfg, rt.clock, credentials)
        except (ValidationError, ValueError, SecretKeyError, CloudError) as e:
            reason = _reason(e)
            self._failed[c.name] = c.generation
            log.warning("cloud %s: cannot build its driver: %s", c.name, reason)
            await self._unhealthy(c.name, f"cannot build its driver: {reason}")
            return False
        old = rt.drivers.get(c.name)
        rt.set_cloud(cfg, driver)
        if old is not None:
            self._retire_driver(old)
        self._built[c.name] = c.generation
        self._failed.pop(c.name, None)
        log.info(
            "cloud %s: driver %s (generation %d)",
            c.name,
            "rebuilt" if old is not None else "built",
            c.generation,
        )
        return True

    async def _credentials(self, cloud: str) -> dict[str, str] | None:
        async with self.rt.db.read() as s:
            token = (
                await s.execute(select(Cloud.credentials).where(Cloud.name == cloud))
            ).scalar_one_or_none()
        if token is None:
            return None
        return self._open_vault().open(token)

    async def _unhealthy(self, cloud: str, message: str) -> None:
        async with self.rt.db.session() as s:
            row = await s.get(Cloud, cloud, with_for_update=True)
            if row is not None:
                row.healthy = False
                row.health_message = message[:1000]

    def _retire(self, cloud: str, why: str) -> None:
        driver = self.rt.drop_cloud(cloud)
        self._built.pop(cloud, None)
        if driver is not None:
            self._retire_driver(driver)
            log.info("cloud %s: driver dropped (%s)", cloud, why)

    def _retire_driver(self, driver: Compute) -> None:
        grace = 2 * self.rt.settings.controllers.call_timeout_seconds
        self._retired.append((self.rt.clock.now() + timedelta(seconds=grace), driver))

    async def _close_idle(self) -> None:
        """Close the retired drivers no call can still be running on."""
        now = self.rt.clock.now()
        idle = [d for after, d in self._retired if after <= now]
        if idle:
            self._retired = [(a, d) for a, d in self._retired if a > now]
            await _close(idle)

    async def close(self) -> None:
        """Close every driver replaced or dropped meanwhile (the worker is stopping)."""
        retired, self._retired = self._retired, []
        await _close([d for _, d in retired])


async def _close(drivers: list[Compute]) -> None:
    for driver in drivers:
        try:
            await driver.close()
        except Exception:
            log.exception("closing a retired driver of %s failed", driver.name)


def _reason(e: Exception) -> str:
    """Why a driver could not be built, without any value (a setting may be sensitive)."""
    if isinstance(e, ValidationError):
        errors = e.errors(include_input=False, include_url=False)
        if not errors:
            return "its stored settings are no longer valid"
        where = ".".join(str(p) for p in errors[0]["loc"])
        return f"its stored settings are no longer valid ({where}: {errors[0]['msg']})"
    return str(e)
