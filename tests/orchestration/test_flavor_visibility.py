"""Stack validation knows the flavors the project could boot, and no others.

A template naming another project's private flavor is refused as a missing one is, with
the same words (no project learns which private flavors exist); a private flavor shared
with the project passes, as in Nova's API.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.services import flavors
from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, hot, server


async def test_another_projects_private_flavor_is_unknown_to_validation(
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
        async with p.db.session() as s:
            await flavors.add_access(s, "sec-1", p.ctx.project_id, refuse_public=True)
        assert await create(p, "shared", hot({"vm": server(flavor="secret.big")}))
    finally:
        await p.close()
