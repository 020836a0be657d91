"""A running worker picks up clouds added, changed, disabled and removed at run time, from
the clouds table, without a restart; and a config file takes over a run-time cloud's name."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from canopy.config import load_settings
from canopy.credentials import Vault
from canopy.reconcile import seed
from canopy.services.clouds import CloudChanges, NewCloud, add_cloud, change_cloud, remove_cloud
from canopy.store.models import Cloud, Flavor, FlavorMapping

from .harness import Plane, make_plane

ONE = """
[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 2
boot_seconds = 1.0
api_latency_ms = 0
"""
EXTRA = NewCloud(
    name="extra",
    driver="sim",
    tier=1,
    options={"hosts": 2, "host_vcpus": 8, "boot_seconds": 1.0, "api_latency_ms": 0},
)


def no_vault() -> Vault:
    raise AssertionError("a sim cloud has no credentials to seal")


async def add(p: Plane, new: NewCloud = EXTRA) -> None:
    async with p.db.session() as s:
        await add_cloud(s, new, no_vault, p.clock.now())


async def change(p: Plane, name: str, changes: CloudChanges) -> None:
    async with p.db.session() as s:
        await change_cloud(s, name, changes, no_vault, p.clock.now())


async def price(p: Plane, cloud: str) -> int:
    """What m1.small costs per hour on `cloud`, in micro-units, as inventory mapped it."""
    async with p.db.read() as s:
        q = (
            select(FlavorMapping.price_per_hour_micros)
            .join(Flavor, Flavor.id == FlavorMapping.flavor_id)
            .where(FlavorMapping.cloud == cloud, Flavor.name == "m1.small")
        )
        return int((await s.execute(q)).scalar_one())


async def active_on(p: Plane, ids: list[str]) -> dict[str, str | None]:
    async def done() -> bool:
        got = [await p.service.get(p.ctx, i) for i in ids]
        return all(g.status == "ACTIVE" for g in got)

    await p.run_until(done)
    return {i: (await p.service.get(p.ctx, i)).cloud for i in ids}


async def test_a_cloud_added_at_run_time_is_driven_and_placed_on(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=ONE)
    try:
        assert set(p.rt.drivers) == {"private"}
        original = p.rt.drivers["private"]
        await add(p)
        await p.step()
        assert set(p.rt.drivers) == {"private", "extra"}
        assert p.rt.drivers["private"] is original  # the config's driver is kept
        assert p.rt.concurrency("extra") == 50
        async with p.db.read() as s:
            extra = await s.get(Cloud, "extra")
            assert extra is not None and extra.vcpus_capacity == 16  # inventory read at once
        # private has 2 vcpus: a second server would take it past the burst threshold
        # (0.8), so every server after the first bursts to the new cloud.
        ids = await p.create(4, flavor="m1.small")
        where = await active_on(p, ids)
        assert sorted(c or "" for c in where.values()) == ["extra", "extra", "extra", "private"]
        remote = {r.canopy_id for r in await p.sim("extra").all_servers()}
        assert remote == {i for i, c in where.items() if c == "extra"}
    finally:
        await p.close()


async def test_a_changed_cloud_gets_a_new_driver_and_a_disabled_one_takes_no_servers(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=ONE)
    try:
        await add(p)
        await p.step()
        first = p.sim("extra")
        assert await price(p, "extra") == 0
        await change(p, "extra", CloudChanges(options={"price_per_vcpu_hour": 0.5}))
        await p.step()
        assert p.sim("extra") is not first and p.sim("extra").settings.price_per_vcpu_hour == 0.5
        assert await price(p, "extra") == 500_000  # m1.small, 1 vcpu: read again at once

        await change(p, "extra", CloudChanges(enabled=False))
        await p.step()
        assert "extra" in p.rt.drivers  # its servers could still be stopped and deleted
        ids = await p.create(2, flavor="m1.medium")  # 2 vcpus each: private holds one

        async def one_active() -> bool:
            got = [await p.service.get(p.ctx, i) for i in ids]
            return any(g.status == "ACTIVE" for g in got)

        await p.run_until(one_active)
        for _ in range(5):
            await p.step()
        got = sorted([await p.service.get(p.ctx, i) for i in ids], key=lambda g: g.status)
        assert [(g.status, g.cloud) for g in got] == [("ACTIVE", "private"), ("BUILD", None)]
        assert await p.sim("extra").all_servers() == []
        # Enabled again: the waiting server goes there.
        await change(p, "extra", CloudChanges(enabled=True))
        where = await active_on(p, ids)
        assert where[got[1].id] == "extra"
    finally:
        await p.close()


async def test_a_removed_cloud_drains_then_its_driver_goes(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=ONE)
    try:
        await add(p, NewCloud(**{**EXTRA.__dict__, "tier": 0, "name": "extra"}))
        await p.step()
        ids = await p.create(3, flavor="m1.small")
        where = await active_on(p, ids)
        on_extra = [i for i, c in where.items() if c == "extra"]
        assert on_extra
        sim = p.sim("extra")

        async with p.db.session() as s:
            await remove_cloud(s, "extra", p.clock.now())
        await p.step()
        assert "extra" in p.rt.drivers  # draining: its servers are still synced and deleted
        # No new server goes there, and the placement says why.
        [late] = await p.create(1, flavor="m1.small")
        for _ in range(5):
            await p.step()
        assert (await p.service.get(p.ctx, late)).cloud == "private"

        for sid in on_extra:
            await p.service.delete(p.ctx, sid)

        async def gone() -> bool:
            return not [r for r in await sim.all_servers() if r.state.value != "deleted"]

        await p.run_until(gone)
        for _ in range(3):
            await p.step()
        assert "extra" not in p.rt.drivers  # empty: nothing left to drain
        await p.worker.fleet.close()
    finally:
        await p.close()


async def test_the_config_takes_over_a_run_time_cloud_of_the_same_name(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=ONE)
    try:
        await add(p)
        cfg = tmp_path / "with-extra.toml"
        cfg.write_text(
            f'data_dir = "{tmp_path}"\n' + ONE + '[[clouds]]\nname = "extra"\ntier = 5\n'
        )
        settings = load_settings(
            cfg, env={}, overrides={"database": {"url": p.settings.database.url}}
        )
        await seed(p.db, settings, p.clock)
        async with p.db.read() as s:
            extra = await s.get(Cloud, "extra")
            assert extra is not None
            assert extra.source == "config" and extra.tier == 5 and extra.credentials is None
        # And a cloud added at run time is not "removed" by a config that never listed it.
        await add(p, NewCloud(name="other", driver="sim"))
        await seed(p.db, settings, p.clock)
        async with p.db.read() as s:
            other = await s.get(Cloud, "other")
            assert other is not None and other.removed_at is None and other.enabled
    finally:
        await p.close()


def test_a_draining_cloud_with_stored_credentials_is_left_to_the_fleet() -> None:
    # At start, draining clouds are built from their kept settings; one whose credentials
    # are sealed is not (no vault there): the worker's fleet builds it with them.
    from canopy.config import Settings
    from canopy.providers.registry import draining_settings

    kept = {
        "driver": "openstack",
        "openstack": {"cloud": None, "credentials": "stored"},
    }
    plain = {"driver": "openstack", "openstack": {"cloud": "site-b"}}
    built = draining_settings(Settings(), {"sealed": kept, "plain": plain})
    assert [c.name for c in built] == ["plain"]


async def test_a_replaced_driver_is_closed_once_no_call_can_run_on_it(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=ONE)
    try:
        await add(p)
        await p.step()
        first = p.sim("extra")
        closed: list[str] = []
        real_close = first.close

        async def close() -> None:
            closed.append(first.name)
            await real_close()

        first.close = close  # type: ignore[method-assign]
        await change(p, "extra", CloudChanges(options={"price_per_vcpu_hour": 0.5}))
        await p.step()
        assert p.sim("extra") is not first
        grace = 2 * p.settings.controllers.call_timeout_seconds
        p.clock.advance(grace - 2)  # the step above moved it on by 1 s
        await p.worker.fleet.refresh()
        assert closed == []  # a call started just before the change may still be running
        p.clock.advance(2)
        await p.worker.fleet.refresh()
        assert closed == ["extra"]
        await p.worker.fleet.close()
        assert closed == ["extra"]  # closed once
    finally:
        await p.close()
