"""`manage_flavors` and extra specs: a child flavor is canopy's only with the same size and
the same extra specs, which are set on it after its create; names follow from both."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from canopy.domain.clock import FakeClock
from canopy.domain.errors import CloudError, TransientError
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import Ability
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.errors import from_status
from canopy.providers.openstack.managed_flavors import choose, sized_name
from canopy.providers.openstack.options import OpenStackOptions

ODD = Resources(vcpus=1, ram_mb=768, disk_gb=3)
PINNED = {"hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "isolate"}


def _flavor(fid: str, name: str, specs: dict[str, str] | None = None) -> dict[str, Any]:
    f: dict[str, Any] = {"id": fid, "name": name, "vcpus": 1, "ram": 768, "disk": 3}
    if specs is not None:
        f["extra_specs"] = specs
    return f


def test_the_healed_name_follows_from_size_and_sorted_specs() -> None:
    healed = sized_name("canopy-", "odd", ODD, PINNED)
    assert re.fullmatch(r"canopy-odd-1-768-3-[0-9a-f]{8}", healed), healed
    # The order the specs come in does not matter; their keys and values do.
    assert sized_name("canopy-", "odd", ODD, dict(reversed(PINNED.items()))) == healed
    other = {**PINNED, "hw:cpu_thread_policy": "prefer"}
    assert sized_name("canopy-", "odd", ODD, other) != healed
    assert sized_name("canopy-", "odd", ODD, {"hw:cpu_policy": "dedicated"}) != healed
    # No specs: the name of before (flavors healed by an older canopy are still found).
    assert sized_name("canopy-", "odd", ODD, {}) == "canopy-odd-1-768-3"
    assert len(sized_name("canopy-", "f" * 255, ODD, PINNED)) == 255


def test_choose_compares_extra_specs_too() -> None:
    healed = sized_name("canopy-", "odd", ODD, PINNED)
    assert choose([], "canopy-", "odd", ODD, PINNED) == (None, "canopy-odd")
    right = _flavor("1", "canopy-odd", dict(PINNED))
    assert choose([right], "canopy-", "odd", ODD, PINNED) == (right, "canopy-odd")
    # The right size without the specs (made before specs were carried, or edited): healed.
    bare = _flavor("1", "canopy-odd", {})
    assert choose([bare], "canopy-", "odd", ODD, PINNED) == (None, healed)
    unlisted = _flavor("1", "canopy-odd")  # a listing without extra specs: none
    assert choose([unlisted], "canopy-", "odd", ODD, PINNED) == (None, healed)
    # A base flavor with some of the specs is not ours (it may be someone else's).
    some = _flavor("1", "canopy-odd", {"hw:cpu_policy": "dedicated"})
    assert choose([some], "canopy-", "odd", ODD, PINNED) == (None, healed)
    made = _flavor("2", healed, dict(PINNED))
    assert choose([bare, made], "canopy-", "odd", ODD, PINNED) == (made, healed)
    # The healed name with some specs missing (the process died between the two calls)
    # is still chosen: its name says which specs it is for, the keeper completes it.
    half = _flavor("2", healed, {"hw:cpu_policy": "dedicated"})
    assert choose([bare, half], "canopy-", "odd", ODD, PINNED) == (half, healed)
    # ... but not one with another value or an extra key: edited by hand, no name left.
    for edited in ({**PINNED, "hw:cpu_policy": "shared"}, {**PINNED, "quota:cpu_shares": "9"}):
        wrong = _flavor("2", healed, edited)
        assert choose([bare, wrong], "canopy-", "odd", ODD, PINNED) == (None, "")
    # Canopy's flavor lost its specs: a base flavor with specs is not the same either.
    assert choose([right], "canopy-", "odd", ODD) == (None, "canopy-odd-1-768-3")
    assert choose([bare], "canopy-", "odd", ODD, {}) == (bare, "canopy-odd")
    plain = _flavor("3", "canopy-odd-1-768-3", {})
    assert choose([right, plain], "canopy-", "odd", ODD) == (plain, "canopy-odd-1-768-3")


class _Child:
    """A child Nova's flavor API in memory, as an admin sees it. `lists_specs=False` is a
    microversion before 2.61 (the listing has no extra specs); `specs_status` is the answer
    to setting extra specs (200, or a fault's status)."""

    def __init__(self, *, lists_specs: bool = True, specs_status: int = 200) -> None:
        self.flavors: dict[str, dict[str, Any]] = {}
        self.lists_specs = lists_specs
        self.specs_status = specs_status
        self.calls: list[tuple[str, str]] = []
        self.racer: str | None = None  # a name another worker makes just before our create

    def add(self, name: str, specs: dict[str, str]) -> str:
        fid = str(uuid.uuid4())
        self.flavors[fid] = {**_flavor(fid, name), "extra_specs": dict(specs)}
        return fid

    def by_name(self, name: str) -> dict[str, Any]:
        [found] = [f for f in self.flavors.values() if f["name"] == name]
        return found

    def _fault(self, status: int, message: str, operation: str, **kw: Any) -> Exception:
        return from_status(
            status, message, cloud="child", operation=operation, duplicate=kw["duplicate"]
        )

    def request(self, method: str, path: str, operation: str, **kw: Any) -> Any:
        self.calls.append((method, path))
        parts = path.strip("/").split("/")
        if (method, path) == ("GET", "/flavors/detail"):
            return {
                "flavors": [
                    {k: v for k, v in f.items() if self.lists_specs or k != "extra_specs"}
                    for f in self.flavors.values()
                ]
            }
        if (method, path) == ("POST", "/flavors"):
            body = kw["body"]["flavor"]
            if self.racer is not None:
                self.add(self.racer, {})
                self.racer = None
            if any(f["name"] == body["name"] for f in self.flavors.values()):
                raise self._fault(409, "Flavor with name exists.", operation, **kw)
            assert body["os-flavor-access:is_public"] is False
            fid = self.add(body["name"], {})
            return {"flavor": {k: v for k, v in self.flavors[fid].items() if k != "extra_specs"}}
        flavor = self.flavors.get(parts[1]) if len(parts) > 1 else None
        if flavor is None:
            if kw["missing_ok"]:
                return None
            raise self._fault(404, "Flavor could not be found.", operation, **kw)
        if method == "DELETE" and len(parts) == 2:
            del self.flavors[parts[1]]
            return None
        if parts[2:] == ["os-extra_specs"] and method == "GET":
            return {"extra_specs": dict(flavor["extra_specs"])}
        if parts[2:] == ["os-extra_specs"] and method == "POST":
            if self.specs_status != 200:
                raise self._fault(self.specs_status, "refused", operation, **kw)
            flavor["extra_specs"].update(kw["body"]["extra_specs"])
            return {"extra_specs": kw["body"]["extra_specs"]}
        raise AssertionError(f"unexpected call {method} {path}")

    def close(self) -> None:
        pass


def _driver(child: _Child, **options: Any) -> OpenStackCompute:
    return OpenStackCompute(
        "child",
        OpenStackOptions(cloud="x", manage_flavors=True, **options),
        FakeClock(),
        client=child,  # type: ignore[arg-type]
    )


def _spec(specs: dict[str, str], size: Resources = ODD) -> ServerSpec:
    return ServerSpec(
        canopy_id=str(uuid.uuid4()),
        name="vm",
        flavor_name="odd",
        resources=size,
        remote_flavor="odd",
        remote_image="img",
        extra_specs=specs,
    )


async def test_made_with_its_extra_specs_and_healed_when_they_change() -> None:
    child = _Child()
    driver = _driver(child)
    first = await driver._flavor_id(_spec(PINNED))
    made = child.flavors[first]
    assert (made["name"], made["extra_specs"]) == ("canopy-odd", PINNED)
    assert child.calls.count(("POST", f"/flavors/{first}/os-extra_specs")) == 1
    # Used again as it is: no create, no specs set again.
    calls = len(child.calls)
    assert await driver._flavor_id(_spec(dict(PINNED))) == first
    assert child.calls[calls:] == []

    # Other specs at the same size: another flavor, named for them; the first one stays.
    shared = {"hw:cpu_policy": "shared"}
    second = await driver._flavor_id(_spec(shared))
    assert child.flavors[second]["name"] == sized_name("canopy-", "odd", ODD, shared)
    assert child.flavors[second]["extra_specs"] == shared
    assert child.flavors[first]["extra_specs"] == PINNED
    # No specs: neither of them, but the plain healed name (without a digest).
    third = await driver._flavor_id(_spec({}))
    assert child.flavors[third]["name"] == "canopy-odd-1-768-3"
    assert child.flavors[third]["extra_specs"] == {}
    assert ("POST", f"/flavors/{third}/os-extra_specs") not in child.calls
    # Back to the first specs: the first flavor again; another worker finds the same ones.
    other = _driver(child)
    for d in (driver, other):
        assert await d._flavor_id(_spec(PINNED)) == first
        assert await d._flavor_id(_spec(shared)) == second
    assert len(child.flavors) == 3


async def test_a_listing_without_extra_specs_reads_them_for_the_candidates_only() -> None:
    child = _Child(lists_specs=False)  # a child below microversion 2.61
    child.add("m1.tiny", {"hw:cpu_policy": "dedicated"})
    base = child.add("canopy-odd", {})  # made by an older canopy, before specs were carried
    driver = _driver(child)
    made = await driver._flavor_id(_spec(PINNED))
    assert made != base and child.flavors[made]["extra_specs"] == PINNED
    # Only the flavors the choice is between are read (not m1.tiny), once per listing
    # (the listing is read again after a create); then the cached one costs no call.
    assert await driver._flavor_id(_spec(PINNED)) == made
    reads = {p for m, p in child.calls if m == "GET" and p.endswith("/os-extra_specs")}
    assert reads == {f"/flavors/{base}/os-extra_specs", f"/flavors/{made}/os-extra_specs"}
    calls = len(child.calls)
    assert await driver._flavor_id(_spec(PINNED)) == made
    assert child.calls[calls:] == []
    # The spec-less flavor made before is still the one for a flavor without specs.
    assert await _driver(child)._flavor_id(_spec({})) == base


async def test_specs_the_child_rejects_leave_no_flavor_behind() -> None:
    child = _Child(specs_status=400)
    driver = _driver(child)
    with pytest.raises(CloudError, match="set flavor extra specs failed: 400"):
        await driver._flavor_id(_spec(PINNED))
    assert child.flavors == {}  # made, then deleted again
    assert driver.abilities.has(Ability.EXACT_FLAVORS)
    child.specs_status = 200  # the next boot tries again, under the same name
    made = await driver._flavor_id(_spec(PINNED))
    assert child.flavors[made]["name"] == "canopy-odd"


async def test_a_refusal_to_set_specs_is_said_once_like_a_refused_create() -> None:
    child = _Child(specs_status=403)
    child.add("m1.medium", {})
    driver = _driver(child)
    for _ in range(2):  # the nearest fit (the only flavor left), tried once
        assert await driver._flavor_id(_spec(PINNED)) == child.by_name("m1.medium")["id"]
    assert child.calls.count(("POST", "/flavors")) == 1
    assert [f["name"] for f in child.flavors.values()] == ["m1.medium"]
    why = driver.abilities.why_not(Ability.EXACT_FLAVORS)
    assert why is not None and "extra specs" in why and "403" in why


async def test_a_healed_flavor_left_without_its_specs_is_completed() -> None:
    child = _Child()
    child.add("canopy-odd", {})
    healed = sized_name("canopy-", "odd", ODD, PINNED)
    half = child.add(healed, {"hw:cpu_policy": "dedicated"})  # died between the calls
    assert await _driver(child)._flavor_id(_spec(PINNED)) == half
    assert child.flavors[half]["extra_specs"] == PINNED
    assert ("POST", "/flavors") not in child.calls


async def test_a_name_taken_meanwhile_without_its_specs_yet_is_tried_again() -> None:
    child = _Child()
    driver = _driver(child)
    child.racer = "canopy-odd"  # made by another worker, its specs not set yet: a 409
    with pytest.raises(TransientError, match="made meanwhile"):
        await driver._flavor_id(_spec(PINNED))
    other = child.by_name("canopy-odd")["id"]
    child.flavors[other]["extra_specs"] = dict(PINNED)  # the other worker's second call
    assert await driver._flavor_id(_spec(PINNED)) == other
    assert len(child.flavors) == 1
