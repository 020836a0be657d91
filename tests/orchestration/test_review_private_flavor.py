"""REVIEW (failing on purpose until fixed): stack validation knows every live flavor.

orchestration/lookups.py:15-17 reads every live flavor's id and name, private ones not
shared with the project included, into the set `nova.flavor` and the server resources'
validation check (resources/server_common.py:47). So a template naming another project's
private flavor passes validation (the stack is created, and fails later at its step)
while a missing flavor is a 400: any project learns which private flavor names and ids
exist (POST /validate, preview or create). Suggested fix: read_lookups filters with
services/flavors.public_or_shared(ctx.project_id) (all flavors for a cloud admin, plus
the project's usable reservations' flavors, as `bootable` allows).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.services import flavors
from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, hot, server


async def test_review_another_projects_private_flavor_is_unknown_to_validation(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        async with p.db.session() as s:
            await flavors.create(
                s,
                p.clock,
                flavors.NewFlavor("sec-1", "secret.big", 512, 1, 1, is_public=False),
            )
        reasons = []
        for name in ("no-such-flavor", "secret.big"):
            with pytest.raises(InvalidRequest) as e:
                await create(p, f"probe-{len(reasons)}", hot({"vm": server(flavor=name)}))
            reasons.append(str(e.value).replace(name, "F"))
        assert reasons[0] == reasons[1]
    finally:
        await p.close()
