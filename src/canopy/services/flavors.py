"""Flavors a cloud admin makes, changes and deletes through Nova's API, and who sees them.

A flavor is visible to a project when it is public, shared with the project (Nova's
flavor access, `flavor_projects`), or the project's active reservation (Blazar's private
flavor); a cloud admin sees every flavor. A deleted flavor is visible to nobody.

A new flavor must be mapped to each cloud's own sizes before placement can send a server
anywhere. Those mappings are the inventory's (controllers/inventory.py), which asks each
cloud for its offerings, so a create makes every cloud's inventory job due at once, in its
own transaction, before it stamps the flavor's `created_at`: a pass that started earlier
runs again (its lease set the next run before it read the flavors), and until a cloud's
inventory has run since the flavor was created, placement waits for it instead of calling
the flavor "not offered" there (scheduler/filters.py, `inventory`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.clock import Clock
from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.reservations.flavors import usable_reservation
from canopy.store.models import Flavor, FlavorProject, Job, Project, Reservation, Server

INVENTORY_JOBS = "inventory:%"


def live() -> ColumnElement[bool]:
    """Flavors that are not deleted."""
    return Flavor.deleted_at.is_(None)


def shared_with(project_id: str) -> ColumnElement[bool]:
    """Private flavors shared with `project_id` through the access list."""
    return exists().where(
        FlavorProject.flavor_id == Flavor.id, FlavorProject.project_id == project_id
    )


def public_or_shared(project_id: str) -> ColumnElement[bool]:
    """What Nova lists as a project's flavors: the public ones and those shared with it."""
    return or_(Flavor.is_public.is_(True), shared_with(project_id))


def not_found(flavor_id: str) -> NotFound:
    return NotFound(f"Flavor {flavor_id} could not be found.")


async def visible(s: AsyncSession, flavor_id: str, ctx: RequestContext) -> Flavor:
    """The live flavor `flavor_id` if the caller may see it, else Nova's 404."""
    flavor = await s.get(Flavor, flavor_id)
    if flavor is None or flavor.deleted_at is not None:
        raise not_found(flavor_id)
    if flavor.is_public or ctx.is_cloud_admin:
        return flavor
    if await is_shared(s, flavor_id, ctx.project_id):
        return flavor
    if await usable_reservation(s, flavor_id, ctx.project_id) is not None:
        return flavor
    raise not_found(flavor_id)


async def is_shared(s: AsyncSession, flavor_id: str, project_id: str) -> bool:
    row = await s.get(FlavorProject, (flavor_id, project_id))
    return row is not None


async def for_update(s: AsyncSession, flavor_id: str, *, deleting: bool = False) -> Flavor:
    """The live flavor `flavor_id`, locked, for an admin's change (404 if there is none).

    On PostgreSQL a change takes FOR NO KEY UPDATE, which lets server creates that hold
    the row FOR KEY SHARE (`bootable`) go on; a delete takes FOR UPDATE and waits for them.
    """
    lock = {"key_share": not deleting}
    flavor = await s.get(Flavor, flavor_id, with_for_update=lock)
    if flavor is None or flavor.deleted_at is not None:
        raise not_found(flavor_id)
    return flavor


@dataclass(frozen=True, slots=True)
class NewFlavor:
    """A validated create request (api/compute/flavor_input.py checks the body)."""

    id: str
    name: str
    ram_mb: int
    vcpus: int
    disk_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    description: str | None = None


async def create(s: AsyncSession, clock: Clock, new: NewFlavor) -> Flavor:
    """Write the flavor and make every cloud's inventory due (see the module's doc)."""
    # First, so the job rows are held by this transaction (a pass cannot take its lease
    # until the flavor is committed), and so `created_at` is later than any pass's start.
    await s.execute(update(Job).where(Job.name.like(INVENTORY_JOBS)).values(next_run_at=None))
    now = clock.now()
    taken = await s.scalar(select(Flavor.id).where(Flavor.name == new.name, live()))
    if taken is not None:
        raise Conflict(f"Flavor with name {new.name} already exists.")
    if await s.get(Flavor, new.id) is not None:
        raise Conflict(f"Flavor with ID {new.id} already exists.")
    flavor = Flavor(
        id=new.id,
        name=new.name,
        vcpus=new.vcpus,
        ram_mb=new.ram_mb,
        disk_gb=new.disk_gb,
        ephemeral_gb=new.ephemeral_gb,
        swap_mb=new.swap_mb,
        rxtx_factor=new.rxtx_factor,
        is_public=new.is_public,
        description=new.description,
        extra_specs=None,
        created_at=now,
    )
    try:
        async with s.begin_nested():
            s.add(flavor)
    except IntegrityError:  # another request took the name or id meanwhile: which one?
        if await s.get(Flavor, new.id, populate_existing=True) is not None:
            raise Conflict(f"Flavor with ID {new.id} already exists.") from None
        raise Conflict(f"Flavor with name {new.name} already exists.") from None
    return flavor


async def remove(s: AsyncSession, clock: Clock, flavor_id: str) -> None:
    """Delete a flavor. Servers booted with it keep it: while any server row names it, the
    row stays, hidden (`deleted_at`); otherwise it goes with its mappings and access list.
    A reservation's flavor goes with its lease, not by itself (409)."""
    flavor = await for_update(s, flavor_id, deleting=True)
    if await s.get(Reservation, flavor_id) is not None:
        raise Conflict(
            f"Flavor {flavor_id} is a reservation's flavor: it is deleted with its lease."
        )
    used = await s.scalar(select(exists().where(Server.flavor_id == flavor_id)))
    if used:
        flavor.deleted_at = clock.now()
        await s.execute(delete(FlavorProject).where(FlavorProject.flavor_id == flavor_id))
    else:
        await s.delete(flavor)
    await s.flush()


async def set_description(s: AsyncSession, flavor_id: str, description: str | None) -> Flavor:
    flavor = await for_update(s, flavor_id)
    flavor.description = description
    await s.flush()
    return flavor


def specs_of(flavor: Flavor) -> dict[str, str]:
    return dict(flavor.extra_specs or {})


async def merge_specs(s: AsyncSession, flavor_id: str, specs: Mapping[str, str]) -> dict[str, str]:
    """Add or replace extra specs; the flavor's specs after the change."""
    flavor = await for_update(s, flavor_id)
    merged = {**specs_of(flavor), **specs}
    flavor.extra_specs = merged
    await s.flush()
    return merged


async def drop_spec(s: AsyncSession, flavor_id: str, key: str) -> None:
    flavor = await for_update(s, flavor_id)
    specs = specs_of(flavor)
    if key not in specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    del specs[key]
    flavor.extra_specs = specs or None
    await s.flush()


async def access_list(s: AsyncSession, flavor_id: str) -> list[str]:
    """The projects a private flavor is shared with, by id."""
    rows = await s.scalars(
        select(FlavorProject.project_id)
        .where(FlavorProject.flavor_id == flavor_id)
        .order_by(FlavorProject.project_id)
    )
    return list(rows)


async def add_access(
    s: AsyncSession, flavor_id: str, project_id: str, *, refuse_public: bool
) -> None:
    if await s.get(Project, project_id) is None:
        raise InvalidRequest(f"Project ID {project_id} is not a valid project.")
    flavor = await for_update(s, flavor_id)
    if flavor.is_public and refuse_public:
        raise Conflict("Can not add access to a public flavor.")
    if await is_shared(s, flavor_id, project_id):
        raise Conflict(
            f"Flavor access already exists for flavor {flavor_id} and project "
            f"{project_id} combination."
        )
    s.add(FlavorProject(flavor_id=flavor_id, project_id=project_id))
    await s.flush()


async def remove_access(s: AsyncSession, flavor_id: str, project_id: str) -> None:
    await for_update(s, flavor_id)
    row = await s.get(FlavorProject, (flavor_id, project_id))
    if row is None:
        raise NotFound(f"Flavor access not found for {flavor_id} / {project_id} combination.")
    await s.delete(row)
    await s.flush()


async def bootable(s: AsyncSession, ref: str, ctx: RequestContext) -> Flavor:
    """The flavor a server create names (by id, else by name), if the caller may boot it.

    A reservation's flavor is let through here: whether its lease allows the boot is
    reservations/using.py's answer. Unknown, deleted or invisible: Nova's 400.

    The row is read FOR KEY SHARE (PostgreSQL): a delete of the flavor (`remove`) waits
    until the create's transaction ends, and then sees its servers (the flavor is kept,
    hidden) instead of deleting a row the new servers are about to name."""
    share = {"read": True, "key_share": True}
    flavor = await s.get(Flavor, ref, with_for_update=share)
    if flavor is None or flavor.deleted_at is not None:
        by_name = select(Flavor).where(Flavor.name == ref, live())
        flavor = await s.scalar(by_name.with_for_update(read=True, key_share=True))
    if flavor is None:
        raise InvalidRequest(f"Flavor {ref} could not be found.")
    if flavor.is_public or ctx.is_cloud_admin:
        return flavor
    if await is_shared(s, flavor.id, ctx.project_id):
        return flavor
    if await s.get(Reservation, flavor.id) is not None:
        return flavor
    raise InvalidRequest(f"Flavor {ref} could not be found.")
