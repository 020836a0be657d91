"""Flavors a caller may not see: a private one as a list marker, deleted ones reserved."""

from __future__ import annotations

from canopy.domain.errors import InvalidRequest
from canopy.reservations import capacity
from tests.api.compute.helpers import V21, create, fault, who
from tests.api.compute.test_flavor_manage import ADMIN, make
from tests.api.conftest import Api


async def test_a_private_flavor_is_not_a_marker_for_others(api: Api) -> None:
    """api/compute/flavors.py `_flavors`: the marker row is read with no visibility (nor
    deleted_at) filter, so a project not given access learns that a private flavor id
    exists (200 instead of "marker not found"), and, sorting by memory_mb/vcpus/root_gb
    with it as marker, bisects its size from which public flavors come after it."""
    await make(api, "secret", id="zz-secret", ram=3000, **{"os-flavor-access:is_public": False})
    olga = await who(api, project="other", user="olga")
    r = await api.client.get(f"{V21}/flavors?marker=no-such-id", headers=olga.h())
    assert fault(r, 400) == "marker [no-such-id] not found"
    r = await api.client.get(
        f"{V21}/flavors/detail?marker=zz-secret&sort_key=memory_mb", headers=olga.h()
    )
    assert fault(r, 400) == "marker [zz-secret] not found"


async def _deleted_in_use(api: Api) -> tuple[str, str]:
    """A flavor deleted while a server uses it (kept, hidden), and the live flavor that
    took its name since: their ids."""
    alice = await who(api)
    fid = (await make(api, "c1.used", id="used", vcpus=1, ram=600, disk=1))["id"]
    await api.plane.worker.inventory.run_once()
    await create(api, alice, flavorRef=fid)
    r = await api.client.delete(f"{V21}/flavors/{fid}", headers=ADMIN)
    assert r.status_code == 202
    again = (await make(api, "c1.used", id="used-2", vcpus=4))["id"]
    return fid, again


async def test_a_deleted_flavor_is_not_reserved_by_id_or_name(api: Api) -> None:
    """reservations/capacity.py:71-75 `public_flavor` looks up by id, then by name, with
    no `deleted_at` filter: a flavor:instance lease (and find_slot) may reserve a flavor
    deleted while a server used it, and by name may get the deleted row rather than the
    live flavor that took the name (two rows share it; `scalar` takes either)."""
    fid, again = await _deleted_in_use(api)
    async with api.plane.db.read() as s:
        try:
            found = await capacity.public_flavor(s, fid)
        except InvalidRequest:
            found = None
        assert found is None, "a deleted flavor can be reserved by its id"
        by_name = await capacity.public_flavor(s, "c1.used")
        assert by_name.id == again


async def test_a_deleted_flavor_is_not_offered_to_virtual_reservations(api: Api) -> None:
    """reservations/capacity.py:86-95 `offers` (virtual:instance: the cheapest public
    flavor that fits) keeps a deleted flavor's mappings (services/flavors.py `remove`
    keeps them for its servers), so a new reservation may be sized and placed as a flavor
    an admin deleted."""
    fid, _ = await _deleted_in_use(api)
    async with api.plane.db.read() as s:
        offered = await capacity.offers(s, capacity.Size("virtual", 1, 600, 1), None)
        assert offered, "nothing offered at all: the test proves nothing"
        assert all(o.flavor_id != fid for o in offered.values()), offered


async def test_a_nan_rxtx_factor_is_a_400(api: Api) -> None:
    """api/compute/flavor_input.py `_rxtx`: Python's JSON reads `NaN`, and NaN passes both
    `<= 0` and `> MAX_FLOAT`. SQLite stores it as NULL, the NOT NULL constraint fails and
    services/flavors.py:121 turns that IntegrityError into "Flavor with name nan already
    exists." (409, false); PostgreSQL stores NaN and shows `"rxtx_factor": null`."""
    raw = '{"flavor": {"name": "nan", "ram": 512, "vcpus": 1, "disk": 1, "rxtx_factor": NaN}}'
    headers = {**ADMIN, "Content-Type": "application/json"}
    r = await api.client.post(f"{V21}/flavors", headers=headers, content=raw)
    assert "rxtx_factor" in fault(r, 400)
