"""Clouds at run time: add, change, disable, enable and remove a cloud without a restart.

Shared by the admin API (/canopy/v1/clouds) and the CLI (`canopy cloud add ...`); both
write the `clouds` row in the caller's transaction and nothing else: the workers pick the
change up from the table (controllers/fleet.py). Options are validated by the same typed
models as the config file; credentials by the driver's credentials model, then sealed with
the installation's vault. Neither a rejected credential nor a stored one is ever put in an
error, a log line or an answer.

Who owns a cloud: one from the config file (`source = "config"`) is edited in the file,
and every change here is refused (409) saying so; one added here (`source = "api"`) is
edited here only. A config file that later lists a run-time cloud's name takes it over at
the next start (reconcile.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import CloudSettings
from canopy.credentials import Vault
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.providers.options import DRIVER_CREDENTIALS, DRIVER_OPTIONS
from canopy.providers.registry import AVAILABLE, stored_settings
from canopy.store.models import Cloud, Server

log = logging.getLogger("canopy.clouds")

CONFIG = "config"
API = "api"
STORED = "stored"
# Keys of a cloud's stored settings that change nothing in its driver.
_NOT_DRIVER = frozenset({"enabled", "tier"})

VaultFactory = Callable[[], Vault]


@dataclass
class NewCloud:
    """What `canopy cloud add` / POST /canopy/v1/clouds asks for."""

    name: str
    driver: str
    tier: int = 0
    enabled: bool = True
    concurrency: int = 50
    flavor_map: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] | None = None


@dataclass
class CloudChanges:
    """What `canopy cloud set` / PATCH asks for; None leaves a field as it is.

    `options` is merged onto the cloud's options, key by key (a key set to None goes back
    to its default). `clear_credentials` drops the stored credentials (the source goes back
    to "env")."""

    tier: int | None = None
    enabled: bool | None = None
    concurrency: int | None = None
    flavor_map: dict[str, str] | None = None
    options: dict[str, Any] | None = None
    credentials: dict[str, Any] | None = None
    clear_credentials: bool = False


def _path(loc: tuple[int | str, ...], driver: str) -> str:
    """A validation error's location as the request names it (`options.region`)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == driver:
        parts[0] = "options"
    return ".".join(parts) or "body"


def _invalid(e: ValidationError, prefix: str | None = None, driver: str = "") -> InvalidRequest:
    """A 400 naming each rejected field by its path; never the rejected value."""
    parts = []
    for err in e.errors(include_input=False, include_url=False):
        where = _path(tuple(err.get("loc", ())), driver)
        if prefix:
            where = prefix if where == "body" else f"{prefix}.{where}"
        parts.append(f"Invalid input for field/attribute {where}: {err.get('msg', 'invalid')}.")
    return InvalidRequest(" ".join(parts) or "Invalid request.")


def validate(
    name: str,
    driver: str,
    *,
    tier: int,
    enabled: bool,
    concurrency: int,
    flavor_map: Mapping[str, str],
    options: Mapping[str, Any],
) -> CloudSettings:
    """The cloud's settings, checked as the config file's are (InvalidRequest naming the
    field path, e.g. `options.region`, if they are not)."""
    if driver not in AVAILABLE or driver not in DRIVER_OPTIONS:
        raise InvalidRequest(
            f"Invalid input for field/attribute driver: unknown driver {driver!r} "
            f"(one of {', '.join(AVAILABLE)})."
        )
    data: dict[str, Any] = {
        "name": name,
        "driver": driver,
        "tier": tier,
        "enabled": enabled,
        "concurrency": concurrency,
        "flavor_map": dict(flavor_map),
        driver: {k: v for k, v in options.items() if v is not None},
    }
    try:
        return CloudSettings.model_validate(data)
    except ValidationError as e:
        raise _invalid(e, driver=driver) from None


def _takes_credentials(driver: str) -> None:
    if driver not in DRIVER_CREDENTIALS:
        raise InvalidRequest(
            f"Invalid input for field/attribute credentials: the {driver} driver takes none."
        )


def sealable(driver: str, credentials: Mapping[str, Any]) -> dict[str, str]:
    """The credentials to seal, checked by the driver's credentials model."""
    _takes_credentials(driver)
    model = DRIVER_CREDENTIALS[driver]
    try:
        return model.model_validate(dict(credentials)).to_vault()
    except ValidationError as e:
        raise _invalid(e, prefix="credentials") from None


def _source_of(options: Mapping[str, Any]) -> str | None:
    value = options.get("credentials")
    return None if value is None else str(value)


async def _row(s: AsyncSession, name: str) -> Cloud:
    row = await s.get(Cloud, name, with_for_update=True)
    if row is None:
        raise NotFound(f"Cloud {name} could not be found.")
    return row


def _config_owned(row: Cloud) -> Conflict:
    return Conflict(
        f"Cloud {row.name} comes from the config file (canopy.toml): edit its [[clouds]] "
        "entry there and restart; only clouds added at run time are changed here."
    )


async def add_cloud(s: AsyncSession, new: NewCloud, vault: VaultFactory, now: datetime) -> Cloud:
    """Add a cloud (source "api"). A name in use is a Conflict, unless its cloud was removed
    (it is then added again, keeping its history and any servers still draining)."""
    options = dict(new.options)
    if new.credentials is not None:
        _takes_credentials(new.driver)
        source = _source_of(options)
        if source not in (None, STORED):
            raise InvalidRequest(
                "Invalid input for field/attribute options.credentials: credentials are "
                f'given, so it must be "{STORED}" or left out (it says {source!r}).'
            )
        options["credentials"] = STORED
    elif _source_of(options) == STORED:
        raise InvalidRequest(
            f'Invalid input for field/attribute credentials: options.credentials = "{STORED}" '
            "needs credentials."
        )
    cfg = validate(
        new.name,
        new.driver,
        tier=new.tier,
        enabled=new.enabled,
        concurrency=new.concurrency,
        flavor_map=new.flavor_map,
        options=options,
    )
    sealed = None
    if new.credentials is not None:
        sealed = vault().seal(sealable(new.driver, new.credentials))
    row = await s.get(Cloud, new.name, with_for_update=True)
    if row is not None and row.removed_at is None:
        if row.source == CONFIG:
            raise Conflict(f"Cloud {row.name} exists: it comes from the config file.")
        raise Conflict(f"Cloud {row.name} exists; change it with PATCH (`canopy cloud set`).")
    if row is None:
        row = Cloud(
            name=cfg.name,
            healthy=True,
            health_message="",
            consecutive_failures=0,
            blocklist_reason="",
            vcpus_claimed=0,
            ram_mb_claimed=0,
            instances_claimed=0,
            spend_per_hour_micros=0,
            generation=0,
        )
        s.add(row)
    row.source = API
    row.driver = cfg.driver
    row.tier, row.enabled = cfg.tier, cfg.enabled
    row.removed_at = None
    row.driver_settings = stored_settings(cfg)
    row.credentials = sealed
    row.generation = (row.generation or 0) + 1
    row.capacity_updated_at = None  # not placeable until a worker has read its inventory
    await s.flush()
    log.info("cloud %s added at run time (driver %s, tier %d)", cfg.name, cfg.driver, cfg.tier)
    return row


def _options_of(row: Cloud) -> dict[str, Any]:
    kept = row.driver_settings or {}
    options = kept.get(row.driver)
    return dict(options) if isinstance(options, dict) else {}


async def change_cloud(
    s: AsyncSession, name: str, changes: CloudChanges, vault: VaultFactory, now: datetime
) -> Cloud:
    """Change a cloud added at run time; the workers rebuild its driver if its options or
    credentials changed (its `generation` moves)."""
    row = await _row(s, name)
    if row.source == CONFIG:
        raise _config_owned(row)
    if row.removed_at is not None:
        raise Conflict(f"Cloud {name} was removed; add it again to use it.")
    kept = row.driver_settings or {}
    options = _options_of(row)
    if changes.options:
        for key, value in changes.options.items():
            if value is None:
                options.pop(key, None)
            else:
                options[key] = value
    sealed: bytes | None = row.credentials
    if changes.clear_credentials:
        sealed = None
        if _source_of(options) == STORED:
            options["credentials"] = "env"
    if changes.credentials is not None:
        _takes_credentials(row.driver)
        source = _source_of(changes.options or {})
        if source not in (None, STORED):
            raise InvalidRequest(
                "Invalid input for field/attribute options.credentials: credentials are "
                f'given, so it must be "{STORED}" or left out (it says {source!r}).'
            )
        options["credentials"] = STORED
    if _source_of(options) == STORED and sealed is None and changes.credentials is None:
        raise InvalidRequest(
            f'Invalid input for field/attribute credentials: options.credentials = "{STORED}" '
            "needs credentials."
        )
    cfg = validate(
        name,
        row.driver,
        tier=row.tier if changes.tier is None else changes.tier,
        enabled=row.enabled if changes.enabled is None else changes.enabled,
        concurrency=(
            int(kept.get("concurrency", 50)) if changes.concurrency is None else changes.concurrency
        ),
        flavor_map=(
            (kept.get("flavor_map") or {}) if changes.flavor_map is None else changes.flavor_map
        ),
        options=options,
    )
    if changes.credentials is not None:
        sealed = vault().seal(sealable(row.driver, changes.credentials))
    new_settings = stored_settings(cfg)

    def driver_part(d: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k not in _NOT_DRIVER}

    rebuild = driver_part(new_settings) != driver_part(kept) or sealed != row.credentials
    row.tier, row.enabled = cfg.tier, cfg.enabled
    row.driver_settings = new_settings
    row.credentials = sealed
    if rebuild:
        row.generation = (row.generation or 0) + 1
    await s.flush()
    log.info("cloud %s changed at run time%s", name, " (driver rebuilt)" if rebuild else "")
    return row


async def remove_cloud(s: AsyncSession, name: str, now: datetime) -> Cloud:
    """Remove a cloud added at run time: it takes no new server and drains (its servers can
    still be deleted and are synced); once it holds none it is `removed`. Its stored
    credentials are kept while it drains and dropped once it is empty (a later remove of
    the empty cloud drops them too)."""
    row = await _row(s, name)
    if row.source == CONFIG:
        raise _config_owned(row)
    row.enabled = False
    if row.removed_at is None:
        row.removed_at = now
        kept = dict(row.driver_settings or {})
        kept["enabled"] = False
        row.driver_settings = kept
    left = (
        await s.execute(
            select(Server.id).where(Server.cloud == name, Server.deleted.is_(False)).limit(1)
        )
    ).first()
    if left is None:
        row.credentials = None
    await s.flush()
    log.info("cloud %s removed at run time%s", name, "" if left is None else ": draining")
    return row
