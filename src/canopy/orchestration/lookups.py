"""What exists, read once per request for validation: flavors, images, keypairs, zones."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.orchestration.resources.base import Lookups
from canopy.orchestration.template import ConstraintCheck
from canopy.store.models import Cloud, Flavor, Image, Keypair


async def read_lookups(s: AsyncSession, ctx: RequestContext) -> Lookups:
    flavors = (
        await s.execute(select(Flavor.id, Flavor.name).where(Flavor.deleted_at.is_(None)))
    ).all()
    images = (await s.execute(select(Image.id, Image.name))).all()
    keys = await s.scalars(select(Keypair.name).where(Keypair.user_id == ctx.user_id))
    zones = await s.scalars(select(Cloud.name).where(Cloud.enabled.is_(True)))
    return Lookups(
        flavors=frozenset(x for row in flavors for x in row),
        images=frozenset(x for row in images for x in row),
        keypairs=frozenset(keys),
        zones=frozenset(zones),
    )


def constraint_check(known: Lookups) -> ConstraintCheck:
    """The custom constraints templates name (nova.flavor, glance.image, nova.keypair)."""
    tables = {
        "nova.flavor": known.flavors,
        "glance.image": known.images,
        "nova.keypair": known.keypairs,
    }

    def check(constraint: str, value: str) -> bool:
        found = tables.get(constraint)
        return True if found is None else value in found

    return check
