"""REVIEW (failing on purpose until fixed): external_id takes a server another stack holds.

resources/adopt.py refuses a server some stack holds ("nor put one server in two
stacks"), but orchestration/external.py `_found`/`check_exist` (and `adopt` at the create
step) check only the project and `deleted`: a second stack takes the first stack's server
as external. Both stacks then suspend/resume/check it, and when the owning stack is
deleted the server goes from under the other stack's COMPLETE resource.
"""

from __future__ import annotations

from pathlib import Path

from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, hot, resources, server, settle
from .test_external import external


async def test_review_external_id_refuses_a_server_another_stack_holds(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        owner = await create(p, "owner", hot({"vm": server()}))
        done = await settle(p, owner)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        held = (await resources(p, owner))["vm"].server_id
        assert held is not None
        try:
            other = await create(p, "other", external(held))
        except Exception:
            return  # refused at validation: fine
        taken = await settle(p, other)
        assert taken.status == "FAILED", (
            f"stack 'other' took stack 'owner''s server {held} as external: "
            f"{taken.action}_{taken.status}"
        )
    finally:
        await p.close()
