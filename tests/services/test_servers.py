"""ServerService: validation, quota, scope and state checks, on both databases.

Every request either writes its intent rows or writes nothing at all.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from canopy.bootstrap import ensure_project
from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound, QuotaError
from canopy.services.servers import CreateServer
from canopy.store.models import Cloud, Flavor, Image, InstanceAction, Server, ServerGroup
from tests.controllers.harness import Plane, make_plane


@pytest.fixture
async def plane(db_url: str, tmp_path: Path) -> AsyncIterator[Plane]:
    p = await make_plane(db_url, tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def _project(p: Plane, name: str, **quotas: int) -> RequestContext:
    pid = await ensure_project(p.db, p.clock, name, quotas=quotas or None)
    return RequestContext(project_id=pid, user_id=f"{name}-user")


async def _rows(p: Plane, model: Any = Server) -> int:
    async with p.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


def _req(name: str = "vm", *, n: int | None = None, **kw: Any) -> CreateServer:
    kw.setdefault("name", name)
    kw.setdefault("flavor", "m1.small")
    kw.setdefault("image", "cirros")
    if n is not None:
        kw["min_count"] = kw["max_count"] = n
    return CreateServer(**kw)


# Validation ---------------------------------------------------------------------------


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"flavor": "m9.huge"}, "Flavor m9.huge could not be found."),
    ({"image": "windows-95"}, "Image windows-95 could not be found."),
    ({"availability_zone": "mars"}, "The requested availability zone is not available: 'mars'"),
    ({"group_id": "no-such-group"}, "Invalid server group no-such-group"),
    ({"min_count": 0}, "min_count must be >= 1"),
    ({"min_count": 3, "max_count": 2}, "max_count must be >= min_count"),
    ({"max_count": 1001}, "max_count must be at most 1000"),
    ({"name": ""}, "name must not be empty"),
    ({"name": "   "}, "name must not be empty"),
    ({"name": "x" * 256}, "longer than 255"),
    # Canopy's own keys, whoever calls the service (not only the API).
    ({"metadata": {"canopy_id": "x"}}, "reserved for canopy"),
    ({"metadata": {"canopy:anything": "x"}}, "reserved for canopy"),
    ({"hints": {"_canopy": {"user_data": "x"}}}, "is reserved"),
    ({"hints": {"group": 5}}, "is not of type 'string'"),
    ({"hints": {"note": "x\ud800"}}, "is not valid UTF-8 text"),
]


async def test_bad_create_writes_nothing(plane: Plane) -> None:
    # One plane for every case (each would otherwise pay for a whole control plane).
    for kw, message in BAD_REQUESTS:
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            await plane.service.create(plane.ctx, _req(**kw))
    assert await _rows(plane) == 0
    assert await _rows(plane, InstanceAction) == 0
    # The same request, corrected, goes through.
    [ok] = await plane.service.create(plane.ctx, _req("x" * 255, n=1))
    assert len(ok.name) == 255


async def test_disabled_zone_is_not_available(plane: Plane) -> None:
    async with plane.db.session() as s:
        await s.execute(update(Cloud).where(Cloud.name == "public").values(enabled=False))
    with pytest.raises(InvalidRequest, match="public"):
        await plane.service.create(plane.ctx, _req(availability_zone="public"))
    assert await _rows(plane) == 0
    [ok] = await plane.service.create(plane.ctx, _req(availability_zone="private"))
    assert ok.requested_zone == "private"


async def test_group_of_another_project_is_refused(plane: Plane) -> None:
    async with plane.db.session() as s:
        s.add(
            ServerGroup(
                id="g1",
                project_id="someone-else",
                name="g",
                policy="affinity",
                created_at=plane.clock.now(),
            )
        )
    with pytest.raises(InvalidRequest, match="g1"):
        await plane.service.create(plane.ctx, _req(group_id="g1"))
    assert await _rows(plane) == 0


async def test_flavor_and_image_by_id_or_name(plane: Plane) -> None:
    async with plane.db.read() as s:
        flavor = (await s.execute(select(Flavor).where(Flavor.name == "m1.large"))).scalar_one()
        image = (await s.execute(select(Image).where(Image.name == "ubuntu-24.04"))).scalar_one()
    [a] = await plane.service.create(plane.ctx, _req(flavor=flavor.id, image=image.id))
    [b] = await plane.service.create(plane.ctx, _req(flavor="m1.large", image="ubuntu-24.04"))
    assert (a.flavor_id, a.image_id) == (b.flavor_id, b.image_id) == (flavor.id, image.id)
    [bare] = await plane.service.create(plane.ctx, _req(image=None))  # boot from volume
    assert bare.image_id is None


async def test_create_writes_intent_and_an_action(plane: Plane) -> None:
    req = _req("web", key_name="k1", metadata={"role": "web"}, hints={"x": 1})
    [server] = await plane.service.create(plane.ctx, req)
    got = await plane.service.get(plane.ctx, server.id)
    assert got.name == "web"
    assert (got.status, got.task_state, got.desired_state, got.phase) == (
        "BUILD",
        "scheduling",
        "active",
        "schedule",
    )
    assert got.project_id == plane.ctx.project_id and got.user_id == plane.ctx.user_id
    assert got.cloud is None and got.remote_id is None  # the API never calls a cloud
    assert got.key_name == "k1" and got.metadata_ == {"role": "web"} and got.hints == {"x": 1}
    assert got.created_at == plane.clock.now()
    async with plane.db.read() as s:
        acts = list((await s.execute(select(InstanceAction))).scalars())
    assert [(a.server_id, a.action, a.request_id) for a in acts] == [
        (server.id, "create", plane.ctx.request_id)
    ]


# Names of multi-create ---------------------------------------------------------------


async def test_multi_create_names(plane: Plane) -> None:
    created = await plane.service.create(plane.ctx, _req("web", n=3))
    assert [s.name for s in created] == ["web-1", "web-2", "web-3"]
    assert len({s.id for s in created}) == 3
    [single] = await plane.service.create(plane.ctx, _req("db"))
    assert single.name == "db"
    assert await _rows(plane, InstanceAction) == 4  # one create action per server


# Quota --------------------------------------------------------------------------------


async def test_instances_quota(plane: Plane) -> None:
    ctx = await _project(plane, "small", instances=2)
    await plane.service.create(ctx, _req("a"))
    await plane.service.create(ctx, _req("b"))
    with pytest.raises(QuotaError) as err:
        await plane.service.create(ctx, _req("c"))
    assert str(err.value) == (
        "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"
    )
    assert await _rows(plane) == 2
    # Another project's quota is its own.
    await plane.service.create(plane.ctx, _req("elsewhere", n=3))


async def test_max_count_is_trimmed_to_what_fits(plane: Plane) -> None:
    ctx = await _project(plane, "five", instances=5)
    await plane.service.create(ctx, _req("first"))
    created = await plane.service.create(ctx, _req("web", min_count=2, max_count=10))
    assert [s.name for s in created] == ["web-1", "web-2", "web-3", "web-4"]
    with pytest.raises(QuotaError, match="Requested 1, but already used 5 of 5 instances"):
        await plane.service.create(ctx, _req("more", min_count=1, max_count=3))
    # Trimmed down to a single server, it keeps the plain name.
    one = await _project(plane, "one", instances=1)
    [server] = await plane.service.create(one, _req("web", min_count=1, max_count=4))
    assert server.name == "web"


async def test_default_and_unlimited_quotas(plane: Plane) -> None:
    # No quota row: the defaults from settings apply.
    ctx = await _project(plane, "defaults")
    created = await plane.service.create(ctx, _req("w", min_count=1, max_count=50))
    assert len(created) == plane.settings.quotas.instances == 10
    # -1 means unlimited.
    big = await _project(plane, "big", instances=-1, cores=-1, ram=-1)
    created = await plane.service.create(big, _req("w", n=30, flavor="m1.xlarge"))
    assert len(created) == 30


async def test_min_count_over_quota_fails_whole(plane: Plane) -> None:
    ctx = await _project(plane, "three", instances=3)
    with pytest.raises(QuotaError) as err:
        await plane.service.create(ctx, _req("web", min_count=4, max_count=6))
    assert str(err.value) == (
        "Quota exceeded for instances: Requested 4, but already used 0 of 3 instances"
    )
    assert await _rows(plane) == 0
    assert await _rows(plane, InstanceAction) == 0


async def test_cores_quota(plane: Plane) -> None:
    ctx = await _project(plane, "cores", cores=5)
    created = await plane.service.create(
        ctx, _req("med", flavor="m1.medium", min_count=1, max_count=10)
    )
    assert len(created) == 2  # 2 x 2 vcpus fit in 5 cores; a third would need 6
    with pytest.raises(QuotaError) as err:
        await plane.service.create(ctx, _req("x", flavor="m1.medium"))
    assert str(err.value) == "Quota exceeded for cores: Requested 2, but already used 4 of 5 cores"
    [tiny] = await plane.service.create(ctx, _req("tiny", flavor="m1.tiny"))  # 1 vcpu fits
    assert tiny.name == "tiny"


async def test_ram_quota(plane: Plane) -> None:
    ctx = await _project(plane, "ram", ram=5000)
    created = await plane.service.create(ctx, _req("s", min_count=1, max_count=5))
    assert len(created) == 2  # 2 x 2048 MB
    with pytest.raises(QuotaError) as err:
        await plane.service.create(ctx, _req("x"))
    assert (
        str(err.value)
        == "Quota exceeded for ram: Requested 2048, but already used 4096 of 5000 ram"
    )
    # Two m1.tiny need 2 x 512 MB, more than the 904 MB left.
    with pytest.raises(QuotaError, match="ram: Requested 1024, but already used 4096 of 5000"):
        await plane.service.create(ctx, _req("y", n=2, flavor="m1.tiny"))


async def test_deleted_servers_free_quota(plane: Plane) -> None:
    ctx = await _project(plane, "recycle", instances=1)
    [server] = await plane.service.create(ctx, _req("a"))
    await plane.service.delete(ctx, server.id)
    # Still counted until it is really gone (as Nova does).
    with pytest.raises(QuotaError):
        await plane.service.create(ctx, _req("b"))

    async def gone() -> bool:
        return (await plane.service.get(ctx, server.id)).deleted

    await plane.run_until(gone)
    [again] = await plane.service.create(ctx, _req("b"))
    assert again.name == "b"


async def test_concurrent_creates_never_exceed_quota(plane: Plane) -> None:
    ctx = await _project(plane, "race", instances=3)
    results = await asyncio.gather(
        *(plane.service.create(ctx, _req(f"r{i}")) for i in range(6)), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, list)]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(ok) == 3
    assert len(errors) == 3 and all(isinstance(e, QuotaError) for e in errors)
    assert await plane.count(project_id=ctx.project_id) == 3


# Scope --------------------------------------------------------------------------------


async def test_another_projects_server_is_not_found(plane: Plane) -> None:
    other = await _project(plane, "other")
    [theirs] = await plane.service.create(other, _req("theirs"))
    sid = theirs.id
    msg = f"Instance {sid} could not be found."
    for call in (
        plane.service.get(plane.ctx, sid),
        plane.service.delete(plane.ctx, sid),
        plane.service.stop(plane.ctx, sid),
        plane.service.start(plane.ctx, sid),
        plane.service.reboot(plane.ctx, sid),
    ):
        with pytest.raises(NotFound, match=re.escape(msg)):
            await call
    assert [s.id for s in await plane.service.list(plane.ctx)] == []
    assert [s.id for s in await plane.service.list(plane.ctx, all_projects=True)] == []
    # Untouched by the refused calls.
    got = await plane.service.get(other, sid)
    assert got.desired_state == "active" and got.task_state == "scheduling"
    assert await _rows(plane, InstanceAction) == 1
    with pytest.raises(NotFound, match=r"Instance nope could not be found\."):
        await plane.service.get(plane.ctx, "nope")
    with pytest.raises(NotFound):
        await plane.service.delete(plane.ctx, "nope")


async def test_a_project_admin_sees_only_its_own_project(plane: Plane) -> None:
    other = await _project(plane, "other")
    [theirs] = await plane.service.create(other, _req("theirs"))
    admin = RequestContext(project_id=plane.ctx.project_id, roles=frozenset({"admin"}))
    assert admin.is_project_admin and not admin.is_cloud_admin
    with pytest.raises(NotFound):
        await plane.service.get(admin, theirs.id)
    assert await plane.service.list(admin, all_projects=True) == []
    with pytest.raises(NotFound):
        await plane.service.delete(admin, theirs.id)


async def test_a_cloud_admin_sees_every_project(plane: Plane) -> None:
    other = await _project(plane, "other")
    [theirs] = await plane.service.create(other, _req("theirs"))
    [mine] = await plane.service.create(plane.ctx, _req("mine"))
    admin = RequestContext(
        project_id="admin-project",
        user_id="admin",
        roles=frozenset({"admin"}),
        is_admin_project=True,
    )
    assert (await plane.service.get(admin, theirs.id)).name == "theirs"
    assert await plane.service.list(admin) == []  # scoped to its own project by default
    everything = await plane.service.list(admin, all_projects=True)
    assert {s.id for s in everything} == {theirs.id, mine.id}
    await plane.service.delete(admin, theirs.id)
    assert (await plane.service.get(other, theirs.id)).desired_state == "deleted"


# State checks -------------------------------------------------------------------------


async def test_power_actions_while_building_conflict(plane: Plane) -> None:
    [sid] = await plane.create()
    for call, verb in (
        (plane.service.stop, "stop"),
        (plane.service.start, "start"),
        (plane.service.reboot, "reboot"),
    ):
        with pytest.raises(Conflict) as err:
            await call(plane.ctx, sid)
        assert str(err.value) == (
            f"Cannot '{verb}' instance {sid} while it is in vm_state building"
        )
    got = await plane.service.get(plane.ctx, sid)
    assert (got.status, got.task_state, got.desired_state) == ("BUILD", "scheduling", "active")
    assert await _rows(plane, InstanceAction) == 1


async def test_power_state_checks_once_active(plane: Plane) -> None:
    [sid] = await plane.create()

    async def status_is(want: str) -> Any:
        async def check() -> bool:
            return (await plane.service.get(plane.ctx, sid)).status == want

        return check

    await plane.run_until(await status_is("ACTIVE"))
    with pytest.raises(Conflict, match=r"Cannot 'start' instance .* vm_state active"):
        await plane.service.start(plane.ctx, sid)
    await plane.service.stop(plane.ctx, sid)
    with pytest.raises(Conflict, match="Cannot 'stop'"):
        await plane.service.stop(plane.ctx, sid)  # already powering off
    await plane.run_until(await status_is("SHUTOFF"))
    with pytest.raises(Conflict, match=r"Cannot 'stop' instance .* vm_state stopped"):
        await plane.service.stop(plane.ctx, sid)
    await plane.service.start(plane.ctx, sid)
    await plane.run_until(await status_is("ACTIVE"))


async def test_delete_twice_is_fine(plane: Plane) -> None:
    [sid] = await plane.create()
    await plane.service.delete(plane.ctx, sid)
    first = await plane.service.get(plane.ctx, sid)
    plane.clock.advance(5)
    await plane.service.delete(plane.ctx, sid)
    again = await plane.service.get(plane.ctx, sid)
    assert (again.desired_state, again.task_state) == ("deleted", "deleting")
    assert again.updated_at == first.updated_at  # the second delete changed nothing
    async with plane.db.read() as s:
        actions = list((await s.execute(select(InstanceAction.action))).scalars())
    assert sorted(actions) == ["create", "delete"]
    with pytest.raises(Conflict):
        await plane.service.stop(plane.ctx, sid)


async def test_deleted_server_is_gone_for_actions(plane: Plane) -> None:
    [sid] = await plane.create()
    await plane.service.delete(plane.ctx, sid)
    await plane.step()
    got = await plane.service.get(plane.ctx, sid)
    assert got.deleted and got.status == "DELETED"  # still readable (changes-since, audit)
    with pytest.raises(NotFound):
        await plane.service.delete(plane.ctx, sid)
    with pytest.raises(NotFound):
        await plane.service.reboot(plane.ctx, sid)


# Listing ------------------------------------------------------------------------------


async def test_list_is_newest_first(plane: Plane) -> None:
    ids = []
    for name in ("old", "mid", "new"):
        ids += await plane.create(name=name)
        plane.clock.advance(1)
    batch = await plane.create(2, name="batch")  # same created_at: ties broken by id
    listed = await plane.service.list(plane.ctx)
    assert [s.id for s in listed] == sorted(batch, reverse=True) + ids[::-1]


async def test_changes_since_includes_deleted(plane: Plane) -> None:
    [keep] = await plane.create(name="keep")
    await plane.create(name="idle")
    plane.clock.advance(10)
    since = plane.clock.now()
    [gone] = await plane.create(name="gone")
    await plane.service.delete(plane.ctx, gone)
    await plane.service.delete(plane.ctx, keep)

    async def names(**kw: Any) -> set[str]:
        return {s.name for s in await plane.service.list(plane.ctx, **kw)}

    # "idle" was created before `since` and not touched since.
    assert await names(changes_since=since) == {"keep", "gone"}
    await plane.step()  # neither reached a cloud: both are deleted at once
    assert (await plane.service.get(plane.ctx, keep)).deleted
    assert (await plane.service.get(plane.ctx, gone)).deleted
    assert await names() == {"idle"}
    assert await names(include_deleted=True) == {"keep", "idle", "gone"}
    changed = {s.name: s.deleted for s in await plane.service.list(plane.ctx, changes_since=since)}
    assert changed["keep"] is True and changed["gone"] is True
    assert await names(changes_since=plane.clock.now() + timedelta(seconds=1)) == set()
