"""`manage_flavors`: canopy's flavors made in the child at their exact size on first use,
replaced when canopy's size changes, and the nearest fit (said once) without admin."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from canopy.domain.clock import SystemClock
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import Ability, RemoteState
from canopy.providers.base import sized_by_request
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.errors import from_status
from canopy.providers.openstack.managed_flavors import NAME_LENGTH, choose, sized_name
from canopy.providers.openstack.options import OpenStackOptions
from tests.interop.nova.harness import RealNova
from tests.providers.openstack.conftest import in_state, wait_for

ODD = Resources(vcpus=1, ram_mb=768, disk_gb=3)  # no flavor of Nova's has this size


def _spec(image: str, flavor: str, size: Resources, **kw: Any) -> ServerSpec:
    base: dict[str, Any] = {
        "canopy_id": str(uuid.uuid4()),
        "name": "vm",
        "flavor_name": flavor,
        "resources": size,
        "remote_flavor": None,
        "remote_image": image,
    }
    base.update(kw)
    return ServerSpec(**base)


def nova_flavors(nova: RealNova) -> dict[str, dict[str, Any]]:
    """Every flavor of the child, public or not, by name (an operator's view)."""
    with nova.http() as http:
        r = http.get("/flavors/detail", params={"is_public": "None"})
        assert r.status_code == 200, r.text
        return {f["name"]: f for f in r.json()["flavors"]}


def test_choose_the_base_name_then_the_sized_one() -> None:
    base = {"id": "1", "name": "canopy-odd", "vcpus": 1, "ram": 768, "disk": 3}
    assert choose([], "canopy-", "odd", ODD) == (None, "canopy-odd")
    assert choose([base], "canopy-", "odd", ODD) == (base, "canopy-odd")
    bigger = Resources(1, 1024, 3)
    assert choose([base], "canopy-", "odd", bigger) == (None, "canopy-odd-1-1024-3")
    healed = {"id": "2", "name": "canopy-odd-1-1024-3", "vcpus": 1, "ram": 1024, "disk": 3}
    assert choose([base, healed], "canopy-", "odd", bigger) == (healed, "canopy-odd-1-1024-3")
    # Back to the first size: the base one again, not a third.
    assert choose([base, healed], "canopy-", "odd", ODD) == (base, "canopy-odd")
    # A disabled flavor of the right size is not used; both names taken: no name.
    off = {**healed, "OS-FLV-DISABLED:disabled": True}
    assert choose([base, off], "canopy-", "odd", bigger) == (None, "")


def test_names_past_nova_s_limit_are_cut_and_told_apart_by_a_digest() -> None:
    long_id = "f" * 255  # a deleted flavor is placed under its id, which may be this long
    _, base = choose([], "canopy-", long_id, ODD)
    sized = sized_name("canopy-", long_id, Resources(1, 1024, 3))
    _, other = choose([], "canopy-", long_id[:-1] + "g", ODD)
    assert len(base) == len(sized) == len(other) == NAME_LENGTH
    assert base.startswith("canopy-fff") and len({base, sized, other}) == 3
    # The same request gives the same name (another worker finds it), and it is used.
    assert choose([], "canopy-", long_id, ODD) == (None, base)
    made = {"id": "3", "name": base, "vcpus": 1, "ram": 768, "disk": 3}
    assert choose([made], "canopy-", long_id, ODD) == (made, base)
    # Names that fit are unchanged.
    assert choose([], "canopy-", "f" * 248, ODD) == (None, "canopy-" + "f" * 248)


async def test_created_on_first_use_and_healed_when_canopy_s_size_changes(
    make_driver: Callable[..., OpenStackCompute], real_nova: RealNova
) -> None:
    driver = make_driver(manage_flavors=True, managed_flavor_prefix=f"c{uuid.uuid4().hex[:6]}-")
    prefix = driver.options.managed_flavor_prefix
    assert driver.takes_any_size and sized_by_request(driver) is driver
    assert driver.abilities.has(Ability.EXACT_FLAVORS)

    async def boot(d: OpenStackCompute, size: Resources) -> str:
        """Boot one server of canopy's flavor "odd" at `size`, delete it (the harness's
        compute node has room for few); the child flavor it booted as."""
        made = await d.create(_spec(real_nova.image, "odd", size))
        await wait_for(lambda: d.get(made.remote_id), in_state(RemoteState.RUNNING))
        with real_nova.http() as http:
            server = http.get(f"/servers/{made.remote_id}").json()["server"]
        await d.delete(made.remote_id)
        await wait_for(lambda: d.get(made.remote_id), lambda r: r is None)
        return str(server["flavor"]["original_name"])

    assert await boot(driver, ODD) == f"{prefix}odd"
    made = nova_flavors(real_nova)[f"{prefix}odd"]
    assert (made["vcpus"], made["ram"], made["disk"]) == (1, 768, 3)
    assert made["os-flavor-access:is_public"] is False

    # Second use: the same flavor, none made.
    before = len(nova_flavors(real_nova))
    assert await boot(driver, ODD) == f"{prefix}odd"
    assert len(nova_flavors(real_nova)) == before

    # Canopy's "odd" grew: a new flavor of the new size, the old one left for its servers.
    bigger = Resources(vcpus=1, ram_mb=1024, disk_gb=3)
    assert await boot(driver, bigger) == f"{prefix}odd-1-1024-3"
    flavors = nova_flavors(real_nova)
    healed = flavors[f"{prefix}odd-1-1024-3"]
    assert (healed["vcpus"], healed["ram"], healed["disk"]) == (1, 1024, 3)
    assert (flavors[f"{prefix}odd"]["ram"], len(flavors)) == (768, before + 1)

    # Another driver (a second worker, a restart) finds them instead of making more.
    other = make_driver(manage_flavors=True, managed_flavor_prefix=prefix)
    assert await boot(other, bigger) == f"{prefix}odd-1-1024-3"
    assert len(nova_flavors(real_nova)) == before + 1
    # An explicit flavor_map entry wins over managing.
    mapped = make_driver(
        manage_flavors=True, managed_flavor_prefix=prefix, flavor_map={"odd": "m1.tiny"}
    )
    assert await boot(mapped, ODD) == "m1.tiny"
    assert len(nova_flavors(real_nova)) == before + 1


class _NotAdminNova:
    """A child whose policy refuses flavor create (a member's credentials): Nova's 403."""

    FLAVORS = [
        {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1},
        {"id": "3", "name": "m1.medium", "vcpus": 2, "ram": 4096, "disk": 40},
    ]

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, operation: str, **kw: Any) -> Any:
        self.calls.append((method, path))
        if (method, path) == ("GET", "/flavors/detail"):
            return {"flavors": self.FLAVORS}
        if (method, path) == ("POST", "/flavors"):
            raise from_status(
                403,
                "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed.",
                cloud="child",
                operation=operation,
            )
        raise AssertionError(f"unexpected call {method} {path}")

    def close(self) -> None:
        pass


async def test_without_admin_the_nearest_fit_and_the_refusal_said_once() -> None:
    nova = _NotAdminNova()
    options = OpenStackOptions(cloud="x", manage_flavors=True)
    driver = OpenStackCompute("child", options, SystemClock(), client=nova)  # type: ignore[arg-type]
    assert driver.takes_any_size
    # Mapped to itself while the cloud was thought to take any size: the nearest fit.
    for _ in range(3):
        spec = _spec("img", "odd", ODD, remote_flavor="odd")
        assert await driver._flavor_id(spec) == "3"
    assert nova.calls.count(("POST", "/flavors")) == 1  # tried once, not per boot
    why = driver.abilities.why_not(Ability.EXACT_FLAVORS)
    assert why is not None and "may not create flavors" in why and "403" in why
    # The inventory maps flavors by the child's offerings from now on.
    assert not driver.takes_any_size and sized_by_request(driver) is None
    # A flavor mapped by the inventory to a child flavor is used as it is.
    assert await driver._flavor_id(_spec("img", "odd", ODD, remote_flavor="m1.tiny")) == "1"


def test_an_unmanaged_openstack_cloud_is_not_sized_by_request() -> None:
    driver = OpenStackCompute(
        "child",
        OpenStackOptions(cloud="x"),
        SystemClock(),
        client=_NotAdminNova(),  # type: ignore[arg-type]
    )
    assert sized_by_request(driver) is None
    assert "manage_flavors is off" in str(driver.abilities.why_not(Ability.EXACT_FLAVORS))


async def test_extra_specs_reach_the_child_and_other_specs_make_another_flavor(
    make_driver: Callable[..., OpenStackCompute], real_nova: RealNova
) -> None:
    driver = make_driver(manage_flavors=True, managed_flavor_prefix=f"c{uuid.uuid4().hex[:6]}-")
    prefix = driver.options.managed_flavor_prefix
    shares = {"quota:cpu_shares": "1024"}  # libvirt's; the harness's fake driver boots it
    made = await driver.create(_spec(real_nova.image, "odd", ODD, extra_specs=shares))
    await wait_for(lambda: driver.get(made.remote_id), in_state(RemoteState.RUNNING))
    with real_nova.http() as http:
        server = http.get(
            f"/servers/{made.remote_id}", headers={"OpenStack-API-Version": "compute 2.79"}
        ).json()["server"]
    await driver.delete(made.remote_id)
    await wait_for(lambda: driver.get(made.remote_id), lambda r: r is None)
    # The server's embedded flavor (2.47+) carries them: Nova had them at the boot.
    assert server["flavor"]["original_name"] == f"{prefix}odd"
    assert server["flavor"]["extra_specs"] == shares

    def child_specs(name: str) -> dict[str, str]:
        with real_nova.http() as http:
            r = http.get(f"/flavors/{nova_flavors(real_nova)[name]['id']}/os-extra_specs")
            assert r.status_code == 200, r.text
            return dict(r.json()["extra_specs"])

    assert child_specs(f"{prefix}odd") == shares
    # Other specs at the same size: another flavor, named for its specs, which Nova has.
    pinned = {"hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "isolate"}
    before = len(nova_flavors(real_nova))
    other = await driver._flavor_id(_spec(real_nova.image, "odd", ODD, extra_specs=pinned))
    healed = sized_name(prefix, "odd", ODD, pinned)
    assert healed.startswith(f"{prefix}odd-1-768-3-")
    assert nova_flavors(real_nova)[healed]["id"] == other
    assert child_specs(healed) == pinned and child_specs(f"{prefix}odd") == shares
    # Both are found again, by this worker and another one; nothing more is made.
    again = make_driver(manage_flavors=True, managed_flavor_prefix=prefix)
    for d in (driver, again):
        assert await d._flavor_id(_spec(real_nova.image, "odd", ODD, extra_specs=pinned)) == other
        first = await d._flavor_id(_spec(real_nova.image, "odd", ODD, extra_specs=shares))
        assert first == nova_flavors(real_nova)[f"{prefix}odd"]["id"]
    assert len(nova_flavors(real_nova)) == before + 1
