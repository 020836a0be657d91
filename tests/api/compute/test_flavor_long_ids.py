"""Flavor ids as Nova takes them: up to 255 characters, end to end (create, show, list
with a marker, extra specs, access, server create, a reservation, delete); 256 and the
other ids Nova's schema refuses are its 400."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from sqlalchemy import func, select

from canopy.store import capacity_blocks
from canopy.store.models import CapacityBlock, Flavor, Reservation, Server
from tests.api.compute.helpers import V21, create, fault, until_status, who
from tests.api.compute.test_flavor_manage import ADMIN, body, make
from tests.api.conftest import Api

# Every character Nova's pattern allows, an inner space included; 255 in all.
LONG = ("c1 long.id_-" + "0123456789" * 30)[:255]
AFTER = LONG[:-1] + "z"  # sorts right after LONG
assert len(LONG) == len(AFTER) == 255


def at(fid: str) -> str:
    return f"{V21}/flavors/{quote(fid, safe='')}"


async def _ids(api: Api, query: str) -> tuple[list[str], dict[str, Any]]:
    r = await api.client.get(f"{V21}/flavors?is_public=None&{query}", headers=ADMIN)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return [f["id"] for f in page["flavors"]], page


async def test_a_255_character_id_works_end_to_end(api: Api) -> None:
    made = await make(api, "c1.long", id=LONG, **{"os-flavor-access:is_public": False})
    assert made["id"] == LONG
    # Nova's links carry the id as it is (not quoted).
    assert {link["href"].rsplit("/flavors/", 1)[1] for link in made["links"]} == {LONG}
    await make(api, "c1.after", id=AFTER)
    r = await api.client.get(at(LONG), headers=ADMIN)
    assert r.status_code == 200 and r.json()["flavor"] == made

    # Listed in id order, one per page: the next link's marker is the long id, and
    # following it gives the flavor after it.
    ids, _ = await _ids(api, "")
    assert ids.index(AFTER) == ids.index(LONG) + 1
    before = ids[ids.index(LONG) - 1]
    ids, page = await _ids(api, f"limit=1&marker={quote(before, safe='')}")
    assert ids == [LONG]
    (nxt,) = [link["href"] for link in page["flavors_links"] if link["rel"] == "next"]
    assert parse_qs(urlsplit(nxt).query)["marker"] == [LONG]
    ids, _ = await _ids(api, f"limit=1&marker={quote(LONG, safe='')}")
    assert ids == [AFTER]

    # Extra specs and the access list under the long id.
    r = await api.client.post(
        f"{at(LONG)}/os-extra_specs", headers=ADMIN, json={"extra_specs": {"k": "v"}}
    )
    assert r.status_code == 200, r.text
    r = await api.client.get(f"{at(LONG)}/os-extra_specs/k", headers=ADMIN)
    assert r.json() == {"k": "v"}
    alice = await who(api)
    r = await api.client.post(
        f"{at(LONG)}/action", headers=ADMIN, json={"addTenantAccess": {"tenant": alice.project_id}}
    )
    assert r.json() == {"flavor_access": [{"flavor_id": LONG, "tenant_id": alice.project_id}]}
    r = await api.client.get(f"{at(LONG)}/os-flavor-access", headers=ADMIN)
    assert r.json()["flavor_access"] == [{"flavor_id": LONG, "tenant_id": alice.project_id}]
    r = await api.client.get(at(LONG), headers=alice.h("2.79"))
    assert r.status_code == 200 and r.json()["flavor"]["id"] == LONG

    # A server booted with it, placed once the inventory has mapped it.
    await api.plane.worker.inventory.run_once()
    sid = await create(api, alice, flavorRef=LONG)
    await until_status(api, alice, sid, "ACTIVE")
    r = await api.client.get(f"{V21}/servers/{sid}", headers=alice.h("2.1"))
    assert r.json()["server"]["flavor"]["id"] == LONG
    r = await api.client.get(f"{V21}/servers/detail?flavor={quote(LONG)}", headers=alice.h())
    assert [s["id"] for s in r.json()["servers"]] == [sid]

    # A capacity block names it (placement's table of capacity errors).
    async with api.plane.db.session() as s:
        await capacity_blocks.block(
            s, cloud="public", zone=None, flavor_id=LONG, until=api.plane.clock.now(), reason="x"
        )
    # Deleted while the server uses it: hidden, kept for the server.
    r = await api.client.delete(at(LONG), headers=ADMIN)
    assert r.status_code == 202
    assert fault(await api.client.get(at(LONG), headers=ADMIN), 404) == (
        f"Flavor {LONG} could not be found."
    )
    async with api.plane.db.read() as s:
        kept = await s.get(Flavor, LONG)
        server = await s.get(Server, sid)
        assert kept is not None and kept.deleted_at is not None
        assert server is not None and server.flavor_id == LONG
        blocks = select(func.count()).where(CapacityBlock.flavor_id == LONG)
        assert await s.scalar(blocks) == 1


async def test_a_reservation_of_a_flavor_with_a_long_id(api: Api) -> None:
    await make(api, "c1.long", id=LONG)
    await api.plane.worker.inventory.run_once()
    t0 = api.plane.clock.now()
    lease = {
        "name": "long",
        "start_date": (t0 + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"),
        "end_date": (t0 + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"),
        "reservations": [{"resource_type": "flavor:instance", "flavor_id": LONG, "amount": 1}],
        "events": [],
    }
    r = await api.client.post("/reservation/v1/leases", json=lease)
    assert r.status_code == 201, r.text
    [res] = r.json()["lease"]["reservations"]
    assert res["flavor_id"] == LONG and res["reservation_flavor_id"] == res["id"]
    async with api.plane.db.read() as s:
        row = await s.get(Reservation, res["id"])
        assert row is not None and row.source_flavor_id == LONG


def _refusal(value: Any, why: str) -> str:
    return f"Invalid input for field/attribute id. Value: {value}. {why}"


async def test_ids_novas_schema_refuses_are_its_400s(api: Api) -> None:
    pattern = "'^(?! )[a-zA-Z0-9. _-]+(?<! )$'"
    huge = 10**300  # a number is kept as its string: 301 characters do not fit
    cases: list[tuple[Any, str]] = [
        ("a" * 256, _refusal("a" * 256, f"'{'a' * 256}' is too long")),
        ("", _refusal("", "'' should be non-empty")),
        (" x", _refusal(" x", f"' x' does not match {pattern}")),
        ("x ", _refusal("x ", f"'x ' does not match {pattern}")),
        ("a/b", _refusal("a/b", f"'a/b' does not match {pattern}")),
        ("a\tb", _refusal("a\tb", f"'a\\tb' does not match {pattern}")),
        (True, _refusal(True, "True is not of type 'string', 'number', 'null'")),
        ([], _refusal([], "[] is not of type 'string', 'number', 'null'")),
        (huge, _refusal(huge, f"'{huge}' is too long")),
    ]
    for sent, message in cases:
        r = await api.client.post(f"{V21}/flavors", headers=ADMIN, json=body(id=sent))
        assert fault(r, 400) == message, sent
    async with api.plane.db.read() as s:
        assert await s.scalar(select(Flavor).where(Flavor.name == "c1.big")) is None
        assert await s.scalar(select(func.max(func.length(Flavor.id)))) == 1  # "1".."5"
    # A path longer than any id is Nova's 404, before the database.
    for path in (at("a" * 256), f"{at('a' * 256)}/os-extra_specs"):
        assert fault(await api.client.get(path, headers=ADMIN), 404) == (
            f"Flavor {'a' * 256} could not be found."
        )
    r = await api.client.get(f"{V21}/flavors?marker={'a' * 256}", headers=ADMIN)
    assert fault(r, 400) == f"marker [{'a' * 256}] not found"


async def test_ids_nova_takes_as_they_come(api: Api) -> None:
    """Numbers become strings; a zero number, like null, is a new UUID (Nova's `if not
    flavorid`); "auto" is only the clients' word for null, so it is an id here; and one
    final newline passes Nova's pattern, so it passes here."""
    sent: list[tuple[Any, str | None]] = [
        (12, "12"),
        (1.5, "1.5"),
        ("auto", "auto"),
        ("a b.c_d-e", "a b.c_d-e"),
        ("x" * 255, "x" * 255),
        ("nl\n", "nl\n"),  # jsonschema's pattern is re.search: `$` matches before a final \n
        (0, None),
        (0.0, None),
        (None, None),
    ]
    for i, (value, want) in enumerate(sent):
        made = await make(api, f"c1.n{i}", id=value)
        if want is None:
            assert len(made["id"]) == 36 and made["id"].count("-") == 4, value
        else:
            assert made["id"] == want, value
        r = await api.client.get(at(made["id"]), headers=ADMIN)
        assert r.status_code == 200 and r.json()["flavor"]["name"] == f"c1.n{i}"
