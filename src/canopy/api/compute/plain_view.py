"""A member's servers/detail page's view reads on SQLite's plain reads, as its rows are.

What `openstack server list` and openstacksdk ask for is the highest microversion the
server offers: from 2.26 each page shows its servers' tags, from 2.47 their flavors
embedded. `views.view_context` reads both through an ORM session (a pooled connection,
BEGIN through the engine, one `Flavor` entity per flavor), which cost a page of 100
about as much again as the page itself (bench/page_cpu.py, "at the highest
microversion"). `plain_view_context` reads the same rows with the same statements' plain
twins on the page's own read connections (store/plain_reads.py): tags with the page's ids
bound as one JSON text (`json_each`, so the statement has no expanding IN and is compiled
once), the flavor table's embedded fields as tuples.

Only a member's page: an admin's reads the clouds (host_status, 2.16) and the create
requests (2.3) as well, and takes `view_context`'s path. Keep it in step with
`view_context`; tests/api/compute/test_plain_view.py compares the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from fastapi import Request
from sqlalchemy import Select, String, bindparam, func, literal_column, select

from canopy.api.compute.microversion import APIVersion
from canopy.api.compute.views import ViewContext
from canopy.config import Settings
from canopy.domain.context import RequestContext
from canopy.store.models import Flavor, ServerTag
from canopy.store.plain_reads import PlainReads, Unsupported
from canopy.store.types import decode_json


class PlainFlavor(NamedTuple):
    """The fields of a flavor an embedded flavor shows (views._flavor_of)."""

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    ephemeral_gb: int
    swap_mb: int
    extra_specs: dict[str, Any] | None


_PAGE_IDS: Select[str] = select(literal_column("value", String)).select_from(
    func.json_each(bindparam("ids", type_=String))
)
TAGS = (
    select(ServerTag.server_id, ServerTag.tag)
    .where(ServerTag.server_id.in_(_PAGE_IDS.scalar_subquery()))
    .order_by(ServerTag.server_id, ServerTag.tag)
)
FLAVORS = select(
    Flavor.id,
    Flavor.name,
    Flavor.vcpus,
    Flavor.ram_mb,
    Flavor.disk_gb,
    Flavor.ephemeral_gb,
    Flavor.swap_mb,
    Flavor.extra_specs,
)


def plain_view_context(
    reads: PlainReads,
    request: Request,
    settings: Settings,
    version: APIVersion,
    ctx: RequestContext,
    ids: Sequence[str],
) -> ViewContext | None:
    """`view_context` for a member's page of `ids`, read on the plain reads; None when it
    is not for them (an admin, or a moment the plain reads leave to the engine)."""
    if ctx.is_cloud_admin:
        return None
    vc = ViewContext(request, settings, version, ctx)
    if not ids:
        return vc
    try:
        with reads.transaction() as run:
            if version.at_least(26):
                for sid, tag in run(TAGS, {"ids": orjson.dumps(list(ids)).decode()}):
                    vc.tags.setdefault(sid, []).append(tag)
            if 47 in vc.at:
                vc.flavors = {
                    fid: PlainFlavor(name, vcpus, ram, disk, ephemeral, swap, decode_json(specs))
                    for fid, name, vcpus, ram, disk, ephemeral, swap, specs in run(FLAVORS, {})
                }
    except Unsupported:
        return None
    return vc
