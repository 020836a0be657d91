"""Per-project usage counters (`quota_usage`), so a quota check costs the same at any size.

Counting a project's live servers on every create grew with the project (50 ms at 100,000
servers). The counters change in the transactions that change what they count:

- a create adds its servers after the quota check, with the project row locked
  (`services.quotas.check_create`), so concurrent creates never pass the check together;
- the final step of a delete (`controllers.power.finalize_delete`, the only place a
  server becomes `deleted`) subtracts it, with one relative UPDATE, never a read-modify-write;
- housekeeping checks every project now and then (`drifts`, `repair`): whatever drift a
  bug or a hand-edited row could leave is repaired, and logged. The count is not made in a
  write transaction (50 ms for a project of 100,000 servers, holding SQLite's one write
  lock and the project row): one SELECT reads the counters and counts the rows, one
  snapshot even under READ COMMITTED, and a short write adds the difference
  (`counter = counter + drift`), so creates and deletes committed after the snapshot
  stay counted; `repairs` fences it, so two repairs from one snapshot cannot both apply;
- `recount` sets a project's counters from its rows, with the project and counter rows
  locked (PostgreSQL), so no create or delete of the project commits between the count and
  the write: only for a project with no counter row yet.

A project with no counter row yet is counted from its rows when first needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.models import Flavor, Project, QuotaUsage, Server
from canopy.store.plans import rare

log = logging.getLogger("canopy.quota_usage")


@dataclass(frozen=True, slots=True)
class Usage:
    instances: int
    cores: int
    ram: int

    def as_dict(self) -> dict[str, int]:
        return {"instances": self.instances, "cores": self.cores, "ram": self.ram}


async def counted(s: AsyncSession, project_id: str) -> Usage:
    """The project's live servers, and the cores and RAM their flavors add up to, from
    the rows (what the counters must equal)."""
    row = (
        await s.execute(
            select(
                func.count(Server.id),
                func.coalesce(func.sum(Flavor.vcpus), 0),
                func.coalesce(func.sum(Flavor.ram_mb), 0),
            )
            .join(Flavor, Flavor.id == Server.flavor_id)
            # `rare`: SQLite's statistics average the projects; with one project holding
            # most servers they make every project's count a scan of the table.
            .where(rare(Server.project_id == project_id), Server.deleted.is_(False))
        )
    ).one()
    return Usage(int(row[0]), int(row[1]), int(row[2]))


async def current(s: AsyncSession, project_id: str) -> Usage:
    """The project's counters, made from its rows if it has none yet.

    Call it with the project row locked (a write transaction): a missing row is inserted.
    """
    row = await s.get(QuotaUsage, project_id, populate_existing=True)
    if row is None:
        used = await counted(s, project_id)
        s.add(QuotaUsage(project_id=project_id, **used.as_dict()))
        await s.flush()
        return used
    return Usage(row.instances, row.cores, row.ram)


async def add(s: AsyncSession, project_id: str, count: int, flavor: Flavor) -> None:
    """Count `count` new servers of `flavor` (after `current`, so the row exists)."""
    await add_usage(s, project_id, Usage(count, count * flavor.vcpus, count * flavor.ram_mb))


# The counters' relative UPDATEs are built once: building one and computing its cache key
# cost about 0.2 ms of a create's CPU (held under SQLite's one write lock). The added
# amounts are bound values (a column's own name is reserved for its SET clause).
_ADD = (
    update(QuotaUsage)
    .where(QuotaUsage.project_id == bindparam("project"))
    .values(
        instances=QuotaUsage.instances + bindparam("more_instances"),
        cores=QuotaUsage.cores + bindparam("more_cores"),
        ram=QuotaUsage.ram + bindparam("more_ram"),
    )
    .execution_options(synchronize_session=False)
)
_FLAVOR: BindParameter[str] = bindparam("flavor")
_RELEASE = (
    update(QuotaUsage)
    .where(QuotaUsage.project_id == bindparam("project"))
    .values(
        instances=QuotaUsage.instances - 1,
        cores=QuotaUsage.cores - select(Flavor.vcpus).where(Flavor.id == _FLAVOR).scalar_subquery(),
        ram=QuotaUsage.ram - select(Flavor.ram_mb).where(Flavor.id == _FLAVOR).scalar_subquery(),
    )
    .execution_options(synchronize_session=False)
)


async def add_usage(s: AsyncSession, project_id: str, more: Usage) -> None:
    """Count new servers adding up to `more` (after `current`): one relative UPDATE."""
    await s.execute(
        _ADD,
        {
            "project": project_id,
            "more_instances": more.instances,
            "more_cores": more.cores,
            "more_ram": more.ram,
        },
    )


async def release(s: AsyncSession, server: Server) -> None:
    """Stop counting `server` (it is about to be marked deleted). One relative UPDATE:
    a missing counter row stays missing and is counted when next needed."""
    await s.execute(_RELEASE, {"project": server.project_id, "flavor": server.flavor_id})


async def recount(s: AsyncSession, project_id: str, now: datetime) -> Usage | None:
    """Set the project's counters from its rows; return the old ones if they were wrong.

    The project row is locked first (creates lock it too), then the counter row (deletes
    update it), so nothing that changes the count commits between the count and the write.
    """
    await s.execute(select(Project.id).where(Project.id == project_id).with_for_update())
    row = (
        await s.execute(
            select(QuotaUsage)
            .where(QuotaUsage.project_id == project_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    used = await counted(s, project_id)
    if row is None:
        s.add(QuotaUsage(project_id=project_id, counted_at=now, **used.as_dict()))
        return None
    old = Usage(row.instances, row.cores, row.ram)
    row.instances, row.cores, row.ram = used.instances, used.cores, used.ram
    row.counted_at = now
    if old != used:
        log.warning(
            "quota usage of project %s was %s, counted %s: corrected", project_id, old, used
        )
        return old
    return None


@dataclass(frozen=True, slots=True)
class Drift:
    """A project's counters and what its rows count, from one snapshot."""

    project_id: str
    repairs: int | None  # None: no counter row yet
    kept: Usage
    counted: Usage

    @property
    def drifted(self) -> bool:
        return self.repairs is None or self.kept != self.counted


def drifts_query(project_ids: list[str]) -> Any:
    """The counters and the counted rows of `project_ids`, in one statement."""
    live = (
        select(
            Server.project_id.label("pid"),
            func.count(Server.id).label("n"),
            func.sum(Flavor.vcpus).label("c"),
            func.sum(Flavor.ram_mb).label("r"),
        )
        .join(Flavor, Flavor.id == Server.flavor_id)
        .where(Server.project_id.in_(project_ids), Server.deleted.is_(False))
        .group_by(Server.project_id)
        .subquery("live")
    )
    return (
        select(
            Project.id,
            QuotaUsage.repairs,
            QuotaUsage.instances,
            QuotaUsage.cores,
            QuotaUsage.ram,
            func.coalesce(live.c.n, 0),
            func.coalesce(live.c.c, 0),
            func.coalesce(live.c.r, 0),
        )
        .outerjoin(QuotaUsage, QuotaUsage.project_id == Project.id)
        .outerjoin(live, live.c.pid == Project.id)
        .where(Project.id.in_(project_ids))
        .order_by(Project.id)
    )


async def drifts(s: AsyncSession, project_ids: list[str]) -> list[Drift]:
    """Each project's counters against its rows (a read: no lock is taken)."""
    if not project_ids:
        return []
    out = []
    for pid, repairs, i, c, r, n, cc, rr in await s.execute(drifts_query(project_ids)):
        kept = Usage(0, 0, 0) if repairs is None else Usage(int(i), int(c), int(r))
        out.append(Drift(pid, repairs, kept, Usage(int(n), int(cc), int(rr))))
    return out


async def repair(s: AsyncSession, d: Drift, now: datetime) -> bool:
    """Add `d`'s drift to the project's counters (a short write), unless another repair
    applied since its snapshot; whether it did."""
    assert d.repairs is not None  # a missing row is `recount`'s
    done = await s.execute(
        update(QuotaUsage)
        .where(QuotaUsage.project_id == d.project_id, QuotaUsage.repairs == d.repairs)
        .values(
            instances=QuotaUsage.instances + (d.counted.instances - d.kept.instances),
            cores=QuotaUsage.cores + (d.counted.cores - d.kept.cores),
            ram=QuotaUsage.ram + (d.counted.ram - d.kept.ram),
            repairs=QuotaUsage.repairs + 1,
            counted_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        return False
    log.warning(
        "quota usage of project %s was %s, counted %s: corrected",
        d.project_id,
        d.kept,
        d.counted,
    )
    return True


async def projects_after(s: AsyncSession, after: str | None, limit: int) -> list[str]:
    """Up to `limit` project ids after `after`, in order (housekeeping's walk)."""
    q = select(Project.id).order_by(Project.id).limit(limit)
    if after is not None:
        q = q.where(Project.id > after)
    return list(await s.scalars(q))
