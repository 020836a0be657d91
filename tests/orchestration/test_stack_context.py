"""OS::Heat::Stack's `context`: canopy serves one region, so a nested stack naming that
region is made there, and one naming any other region is refused before anything exists
(at create, once a value known only then names it), with the region canopy serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.store.models import Stack
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, settle

CHILD = """\
heat_template_version: 2018-08-31
resources:
  vm:
    type: OS::Nova::Server
    properties: {flavor: m1.small, image: cirros}
"""


def remote(context: Any, **more: Any) -> dict[str, Any]:
    """hot/multi_region_hello_world.yaml's shape: a stack resource with a context."""
    return hot(
        {
            "stack_one": {
                "type": "OS::Heat::Stack",
                "properties": {"context": context, "template": CHILD},
            },
            **more,
        }
    )


async def _stacks(p: Plane) -> list[Stack]:
    async with p.db.read() as s:
        return list(await s.scalars(select(Stack).where(Stack.deleted.is_(False))))


async def test_the_region_canopy_serves_is_accepted(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        region = p.settings.identity.region
        sid = await create(p, "here", remote({"region_name": region}))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        assert len(await _stacks(p)) == 2 and len(await live_servers(p)) == 1
    finally:
        await p.close()


async def test_another_region_is_refused_naming_the_one_canopy_serves(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS, overrides={"identity": {"region": "Kent"}})
    try:
        with pytest.raises(InvalidRequest) as e:
            await create(p, "there", remote({"region_name": "RegionTwo"}))
        assert str(e.value) == (
            "Property error: resources.stack_one.properties: context.region_name: Cannot "
            'establish connection to Heat endpoint at region "RegionTwo": canopy serves one '
            "region, Kent."
        )
        # RegionOne is not special: it is refused when canopy serves another region.
        with pytest.raises(InvalidRequest, match='region "RegionOne": canopy serves'):
            await create(p, "there", remote({"region_name": "RegionOne"}))
        assert await _stacks(p) == []
        sid = await create(p, "here", remote({"region_name": "Kent"}))
        assert (await settle(p, sid)).status == "COMPLETE"
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"credential_secret_id": "s3cr3t"}, "a stack in a remote cloud is not supported"),
        ({"region": "RegionOne"}, "context: Unknown Property region"),
    ],
)
async def test_what_canopy_cannot_honour_in_a_context_is_refused(
    db_url: str, tmp_path: Path, context: dict[str, Any], message: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        with pytest.raises(InvalidRequest, match=message):
            await create(p, "bad", remote(context))
        assert await _stacks(p) == []
    finally:
        await p.close()


async def test_a_region_known_only_at_create_fails_the_resource_not_the_walk(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = remote(
            {"region_name": {"get_attr": ["where", "value"]}},
            where={"type": "OS::Heat::Value", "properties": {"value": "RegionTwo"}},
        )
        sid = await create(p, "late", t)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason.startswith(
            "Resource CREATE failed: resources.stack_one: context.region_name:"
        )
        assert "canopy serves one region, RegionOne." in done.status_reason
        assert [s.id for s in await _stacks(p)] == [sid]  # no child was made
        assert await live_servers(p) == []
    finally:
        await p.close()
