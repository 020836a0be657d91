"""Zones, missing abilities, refused credentials and untagged servers in the sim cloud: what
the tests of the core need a cloud to do to them."""

from __future__ import annotations

import dataclasses

import pytest

from canopy.config import SimSettings
from canopy.domain.errors import CapacityError, CloudAuthError, InvalidRequest, Unsupported
from canopy.domain.states import Ability, PowerAction

from .helpers import MakeSim, spec


async def test_a_cloud_without_zones_reports_none_and_its_servers_have_none(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    assert await sim.zones() == []
    assert (await sim.create(spec())).zone is None


async def test_hosts_are_dealt_round_the_zones_and_a_create_lands_in_the_zone_asked(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(zones=["a", "b"], hosts=4, host_vcpus=2)
    assert await sim.zones() == ["a", "b"]
    made = [await sim.create(dataclasses.replace(spec(vcpus=2), zone="b")) for _ in range(2)]
    assert [r.zone for r in made] == ["b", "b"]
    # Zone b (h2, h4) is now full; zone a still has both its hosts.
    with pytest.raises(CapacityError) as e:
        await sim.create(dataclasses.replace(spec(vcpus=2), zone="b"))
    assert (e.value.cloud, e.value.zone) == ("private", "b")
    assert "in zone 'b'" in str(e.value)
    assert (await sim.create(dataclasses.replace(spec(vcpus=2), zone="a"))).zone == "a"
    # The list and get report each server's zone.
    listed = {r.remote_id: r.zone for r in await sim.list()}
    assert sorted(listed.values()) == ["a", "b", "b"]


async def test_without_a_zone_the_cloud_chooses_one_with_room(make_sim: MakeSim) -> None:
    sim = make_sim(zones=["a", "b"], hosts=2, host_vcpus=2)
    first = await sim.create(spec(vcpus=2))
    second = await sim.create(spec(vcpus=2))
    assert {first.zone, second.zone} == {"a", "b"}
    with pytest.raises(CapacityError) as e:
        await sim.create(spec(vcpus=2))
    assert e.value.zone is None  # no zone asked for: the error is the whole cloud's


async def test_a_full_zone_refuses_every_create_there_and_can_be_filled_on_a_live_cloud(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(zones=["a", "b"], hosts=2)
    assert (await sim.create(dataclasses.replace(spec(), zone="a"))).zone == "a"
    sim.settings.full_zones = ["a"]
    with pytest.raises(CapacityError) as e:
        await sim.create(dataclasses.replace(spec(), zone="a"))
    assert e.value.zone == "a"
    # Without a zone, the cloud places in the zones that have room.
    assert (await sim.create(spec())).zone == "b"
    sim.settings.full_zones = ["a", "b"]
    with pytest.raises(CapacityError) as e:
        await sim.create(spec())
    assert e.value.zone is None


async def test_an_unknown_zone_is_a_bad_request(make_sim: MakeSim) -> None:
    sim = make_sim(zones=["a"])
    with pytest.raises(InvalidRequest, match="invalid availability zone 'z'"):
        await sim.create(dataclasses.replace(spec(), zone="z"))
    plain = make_sim(path=sim.state_file.with_name("plain.db"))
    with pytest.raises(InvalidRequest):
        await plain.create(dataclasses.replace(spec(), zone="a"))


def test_zone_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="distinct"):
        SimSettings(zones=["a", "a"])
    with pytest.raises(ValueError, match="not among zones"):
        SimSettings(zones=["a"], full_zones=["b"])


async def test_a_missing_ability_is_declared_with_its_reason_and_refused(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(missing_abilities={"stop_start": "spot servers cannot be stopped"})
    assert not sim.abilities.has(Ability.STOP_START)
    assert sim.abilities.why_not(Ability.STOP_START) == "spot servers cannot be stopped"
    assert sim.abilities.has(Ability.REBOOT)
    made = await sim.create(spec())
    with pytest.raises(Unsupported, match="spot servers cannot be stopped"):
        await sim.power(made.remote_id, PowerAction.STOP)


async def test_refused_credentials_fail_every_call_until_they_work_again(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(zones=["a"])
    made = await sim.create(spec())
    sim.settings.refuse_credentials = True
    for call in (sim.list, sim.zones, sim.capacity, lambda: sim.create(spec())):
        with pytest.raises(CloudAuthError) as e:
            await call()  # type: ignore[operator]
        assert e.value.cloud == "private"
    sim.settings.refuse_credentials = False
    assert [r.remote_id for r in await sim.list()] == [made.remote_id]


async def test_untagged_servers_are_listed_only_by_a_cloud_that_cannot_filter_by_tag(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    tagged = await sim.create(spec())
    untagged = await sim.create_out_of_band(None, "operator-vm")
    assert [r.remote_id for r in await sim.list()] == [tagged.remote_id]
    sim.settings.list_untagged = True
    assert {r.remote_id: r.canopy_id for r in await sim.list()} == {
        tagged.remote_id: tagged.canopy_id,
        untagged.remote_id: None,
    }
    changed = await sim.list(changes_since=tagged.created_at)
    assert untagged.remote_id in {r.remote_id for r in changed}
