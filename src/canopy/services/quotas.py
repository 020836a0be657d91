"""Project quotas: the one module that reads limits, counts usage and enforces them
(servers, cores, RAM, metadata items, keypairs, server groups and their members), and
shows them as Nova does (limits, usage, defaults, updates).

A project's limit for a resource is its `Quota` row, else the default from settings
(`[quotas]`), else, for the resources Nova keeps only for API compatibility (the
nova-network and file-injection ones), Nova's own default. Usage is counted from the rows,
never stored, so it cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.errors import InvalidRequest, QuotaError
from canopy.store import quota_usage
from canopy.store.models import Flavor, Keypair, Project, Quota, Server, ServerGroup

# Resources that canopy enforces or counts; their defaults come from settings.
COUNTED = (
    "instances",
    "cores",
    "ram",
    "key_pairs",
    "metadata_items",
    "server_groups",
    "server_group_members",
)
# Resources Nova still shows (below some microversion) but that limit nothing here.
LEGACY_DEFAULTS: dict[str, int] = {
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
    "fixed_ips": -1,
    "floating_ips": -1,
    "security_groups": -1,
    "security_group_rules": -1,
}
RESOURCES = COUNTED + tuple(LEGACY_DEFAULTS)

# Nova dropped the nova-network quotas from the API at 2.36, file injection at 2.57.
NETWORK_QUOTAS = frozenset({"fixed_ips", "floating_ips", "security_groups", "security_group_rules"})
INJECTION_QUOTAS = frozenset(
    {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
)
MAX_LIMIT = 0x7FFFFFFF  # Nova's database integer
_INTEGER = re.compile(r"-?[0-9]+")


def could_be_id(value: str) -> bool:
    """Whether `value` fits an id column (PostgreSQL refuses NUL characters)."""
    return 0 < len(value) <= 64 and "\x00" not in value


@dataclass(frozen=True, slots=True)
class Usage:
    """One resource's line in the detailed view."""

    limit: int
    in_use: int
    reserved: int = 0


def hidden_at(minor: int) -> frozenset[str]:
    """The quota names Nova no longer shows at microversion 2.`minor`."""
    if minor >= 57:
        return NETWORK_QUOTAS | INJECTION_QUOTAS
    if minor >= 36:
        return NETWORK_QUOTAS
    return frozenset()


def defaults(settings: Settings) -> dict[str, int]:
    """Every resource's default limit (-1 = unlimited)."""
    out = {k: int(v) for k, v in settings.quotas.model_dump().items() if k in COUNTED}
    out.update(LEGACY_DEFAULTS)
    return out


async def verify_project(s: AsyncSession, project_id: str) -> Project:
    """The project, or Nova's 400 for an id Keystone does not know."""
    project = await s.get(Project, project_id) if could_be_id(project_id) else None
    if project is None:
        raise InvalidRequest(f"Project ID {project_id} is not a valid project.")
    return project


# What every create reads, built once (services/server_statements.py says why).
_LIMITS = select(Quota.resource, Quota.hard_limit).where(Quota.project_id == bindparam("project"))
_LOCK_PROJECT = (
    select(Project.id).where(Project.id == bindparam("project")).with_for_update(key_share=True)
)


async def limits(s: AsyncSession, settings: Settings, project_id: str) -> dict[str, int]:
    """The project's limit for every resource: its own rows over the defaults."""
    out = defaults(settings)
    if not could_be_id(project_id):
        return out
    rows = await s.execute(_LIMITS, {"project": project_id})
    for resource, hard_limit in rows:
        if resource in out:
            out[resource] = int(hard_limit)
    return out


async def project_usage(s: AsyncSession, project_id: str) -> dict[str, int]:
    """The project's live servers, and the cores and RAM their flavors add up to."""
    return (await quota_usage.counted(s, project_id)).as_dict()


async def server_group_count(s: AsyncSession, project_id: str) -> int:
    q = select(func.count()).select_from(ServerGroup).where(ServerGroup.project_id == project_id)
    return int((await s.execute(q)).scalar_one())


async def keypair_count(s: AsyncSession, user_id: str) -> int:
    if not could_be_id(user_id):
        return 0
    q = select(func.count()).select_from(Keypair).where(Keypair.user_id == user_id)
    return int((await s.execute(q)).scalar_one())


async def group_member_count(s: AsyncSession, group_id: str) -> int:
    """Live servers in one server group."""
    q = (
        select(func.count())
        .select_from(Server)
        .where(Server.group_id == group_id, Server.deleted.is_(False))
    )
    return int((await s.execute(q)).scalar_one())


async def largest_group(s: AsyncSession, project_id: str) -> int:
    """The member count of the project's fullest server group (0 without groups)."""
    sub = (
        select(func.count().label("n"))
        .select_from(Server)
        .join(ServerGroup, ServerGroup.id == Server.group_id)
        .where(ServerGroup.project_id == project_id, Server.deleted.is_(False))
        .group_by(Server.group_id)
        .subquery()
    )
    return int((await s.execute(select(func.coalesce(func.max(sub.c.n), 0)))).scalar_one())


async def usage(s: AsyncSession, project_id: str, user_id: str) -> dict[str, int]:
    """What the project uses now, per resource.

    Keypairs belong to users, so `key_pairs` counts the given user's (the count their
    limit is checked against); `server_group_members` is the fullest group's size, the
    number that meets the per-group limit first. Nova reports 0 for both.
    """
    used = dict.fromkeys(RESOURCES, 0)
    if not could_be_id(project_id):
        return used
    used.update(await project_usage(s, project_id))
    used["server_groups"] = await server_group_count(s, project_id)
    used["key_pairs"] = await keypair_count(s, user_id) if user_id else 0
    used["server_group_members"] = await largest_group(s, project_id)
    return used


async def detail(
    s: AsyncSession, settings: Settings, project_id: str, user_id: str
) -> dict[str, Usage]:
    lim = await limits(s, settings, project_id)
    used = await usage(s, project_id, user_id)
    return {k: Usage(limit=lim[k], in_use=used[k]) for k in RESOURCES}


def parse_limit(resource: str, value: object) -> int:
    """A requested limit: an integer (or a string of one) within [-1, 2**31 - 1]."""
    if isinstance(value, bool):
        raise InvalidRequest(f"Invalid input for field/attribute {resource}. Value: {value}.")
    if isinstance(value, str):
        if not _INTEGER.fullmatch(value):
            raise InvalidRequest(
                f"Invalid input for field/attribute {resource}. Value: {value}. "
                f"'{value}' does not match '^-?[0-9]+$'"
            )
        value = int(value)
    if not isinstance(value, int):
        raise InvalidRequest(
            f"Invalid input for field/attribute {resource}. Value: {value}. "
            f"{value!r} is not of type 'integer', 'string'"
        )
    if value < -1:
        raise InvalidRequest(
            f"Invalid input for field/attribute {resource}. Value: {value}. "
            f"{value} is less than the minimum of -1"
        )
    if value > MAX_LIMIT:
        raise InvalidRequest(
            f"Invalid input for field/attribute {resource}. Value: {value}. "
            f"{value} is greater than the maximum of {MAX_LIMIT}"
        )
    return value


async def update(
    s: AsyncSession,
    settings: Settings,
    project_id: str,
    user_id: str,
    values: Mapping[str, int],
    *,
    force: bool = False,
) -> None:
    """Set limits; without `force`, none may go below what is already in use.

    All values are checked before any is written, so a bad request changes nothing.
    """
    if not force:
        used = await usage(s, project_id, user_id)
        for resource, value in values.items():
            # Per-user and per-group resources have no project-wide minimum (as in Nova).
            minimum = 0 if resource in ("key_pairs", "server_group_members") else used[resource]
            if value != -1 and value < minimum:
                raise InvalidRequest(
                    f"Quota limit {value} for {resource} must be greater than or equal to "
                    f"already used and reserved {minimum}."
                )
    for resource, value in values.items():
        row = await s.get(Quota, (project_id, resource))
        if row is None:
            s.add(Quota(project_id=project_id, resource=resource, hard_limit=value))
        else:
            row.hard_limit = value
    await s.flush()


async def reset(s: AsyncSession, project_id: str) -> None:
    """Drop the project's own limits: it falls back to the defaults."""
    await s.execute(delete(Quota).where(Quota.project_id == project_id))


async def lock_project(s: AsyncSession, project_id: str) -> None:
    """Serialise quota-checked creates in one project (PostgreSQL; SQLite has one writer).

    FOR NO KEY UPDATE, not FOR UPDATE: it still excludes every other create, but not the
    key-share lock a foreign-key check takes on the project row. With FOR UPDATE, a
    delete's transaction that had moved the counters and then inserted a row referencing
    the project waited for a create that held the project and waited for the counters'
    row: a deadlock, and a 500 (tests/store/test_counters_kill9.py found it)."""
    if s.get_bind().dialect.name == "postgresql":
        await s.execute(_LOCK_PROJECT, {"project": project_id})


async def check_create(
    s: AsyncSession,
    settings: Settings,
    project_id: str,
    flavor: Flavor,
    *,
    min_count: int,
    max_count: int,
    metadata_items: int = 0,
    group_id: str | None = None,
) -> int:
    """How many of `min_count`..`max_count` servers of `flavor` the project may create now;
    QuotaError (Nova's messages) if not even `min_count` fit, if the metadata has too many
    items, or if the server group would have more members than `server_group_members`.

    Call it in the create transaction, which must then create `count` servers: it locks
    the project row (PostgreSQL) so two concurrent creates cannot both pass the check
    (SQLite has one writer), and adds them to the project's usage counters
    (store/quota_usage.py), which the check reads instead of counting the rows.
    """
    await lock_project(s, project_id)
    lim = await limits(s, settings, project_id)
    # The project's counters, not a count of its rows: the same cost at any size.
    used = (await quota_usage.current(s, project_id)).as_dict()
    in_group = await group_member_count(s, group_id) if group_id is not None else 0
    count = fit(
        lim,
        used,
        flavor,
        min_count=min_count,
        max_count=max_count,
        metadata_items=metadata_items,
        in_group=in_group if group_id is not None else None,
    )
    await quota_usage.add(s, project_id, count, flavor)
    return count


def fit(
    lim: Mapping[str, int],
    used: Mapping[str, int],
    flavor: Flavor,
    *,
    min_count: int,
    max_count: int,
    metadata_items: int = 0,
    in_group: int | None = None,
) -> int:
    """How many of `min_count`..`max_count` servers of `flavor` fit in `lim` beside `used`
    (and beside `in_group` members of their server group, if they join one); QuotaError
    as `check_create` says. Pure: the callers read and lock, and count what it returns."""
    if 0 <= lim["metadata_items"] < metadata_items:
        raise QuotaError(f"Maximum number of metadata items exceeds {lim['metadata_items']}")
    room_for = max_count
    for res, per in (("instances", 1), ("cores", flavor.vcpus), ("ram", flavor.ram_mb)):
        limit = lim[res]
        if limit < 0:
            continue
        room = (limit - used[res]) // per
        if room < min_count:
            raise QuotaError(
                f"Quota exceeded for {res}: Requested {min_count * per}, but already used "
                f"{used[res]} of {limit} {res}"
            )
        room_for = min(room_for, room)
    count = max(min_count, room_for)
    members = lim["server_group_members"]
    if in_group is not None and 0 <= members < in_group + count:
        raise QuotaError("Quota exceeded, too many servers in group")
    return count
