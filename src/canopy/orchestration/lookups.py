"""What exists, read once per request for validation: flavors, images, keypairs, zones.

Only what the caller could name: the flavors and images its project can see (as the Nova
and Glance APIs answer it), the keypairs of its user. Another project's private image is
refused as a missing one is, with the same words, so validation reveals nothing of it."""

from __future__ import annotations

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.orchestration.resources.base import Lookups
from canopy.orchestration.template import ConstraintCheck
from canopy.services import flavors as flavor_service
from canopy.services import images as image_service
from canopy.store.models import Cloud, Flavor, Image, Keypair, Lease, Reservation


async def read_lookups(s: AsyncSession, ctx: RequestContext) -> Lookups:
    flavors = (await s.execute(_visible_flavors(ctx))).all()
    images = (await s.execute(select(Image.id, Image.name).where(image_service.visible(ctx)))).all()
    keys = await s.scalars(select(Keypair.name).where(Keypair.user_id == ctx.user_id))
    zones = await s.scalars(select(Cloud.name).where(Cloud.enabled.is_(True)))
    return Lookups(
        flavors=frozenset(x for row in flavors for x in row),
        images=frozenset(x for row in images for x in row),
        keypairs=frozenset(keys),
        zones=frozenset(zones),
    )


def _visible_flavors(ctx: RequestContext) -> Select[str, str]:
    """The live flavors the caller could name: the Nova API's rule (public or shared with
    the project; every one for a cloud admin) and the flavors of the project's reservations
    (whether the lease allows a boot is the server create's answer, as for `bootable`)."""
    q = select(Flavor.id, Flavor.name).where(flavor_service.live())
    if ctx.is_cloud_admin:
        return q
    own_reservation = exists().where(
        Reservation.id == Flavor.id,
        Lease.id == Reservation.lease_id,
        Lease.project_id == ctx.project_id,
    )
    return q.where(or_(flavor_service.public_or_shared(ctx.project_id), own_reservation))


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
