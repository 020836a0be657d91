"""No injection of internal fields: scheduler hints have a bounded schema, canopy's own
hint and metadata keys are refused, and server attributes live in their own columns, so
nothing a user sends bypasses their validation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from canopy.store.models import Server, ServerTag, ServerUserData
from tests.api.conftest import Api
from tests.controllers.harness import statements

from .helpers import V21, create, fault, server_body, show, who


async def _servers(api: Api) -> int:
    async with api.plane.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(Server))).scalar_one())


def _body(hints: Any = None, **server: Any) -> dict[str, Any]:
    body = server_body("x", networks="none", **server)
    if hints is not None:
        body["os:scheduler_hints"] = hints
    return body


REFUSED: list[tuple[dict[str, Any], str]] = [
    # What the old hints JSON would have taken as canopy's own fields.
    (
        _body({"_canopy": {"tags": ["a/b"], "user_data": "!!", "description": "x" * 999}}),
        "reserved",
    ),
    (_body({"_anything": 1}), "reserved"),
    (_body(metadata={"canopy_id": "another-server"}), "reserved for canopy"),
    (_body(metadata={"canopy:id": "x"}), "reserved for canopy"),
    # Nova's known hints, with the wrong types.
    (_body({"group": 5}), "5 is not of type 'string'"),
    (_body({"group": ["g"]}), "is not of type 'string'"),
    (_body({"different_host": "not-a-uuid"}), "is not a 'uuid'"),
    (_body({"same_host": [1]}), "is not of type 'string'"),
    (_body({"query": 5}), "is not of type 'string', 'object'"),
    (_body({"build_near_host_ip": "10.0.0.300"}), "is not a 'ip-address'"),
    (_body({"cidr": "24"}), "does not match"),
    (_body({"target_cell": " x"}), "is not a valid name"),
    (_body({"different_cell": [None]}), "is not of type 'string'"),
    # Unknown hints: accepted, within bounds.
    (_body({f"k{i}": i for i in range(33)}), "At most 32 scheduler hints"),
    (_body({"deep": [[[["too deep"]]]]}), "nests deeper than 3"),
    (_body({"long": "x" * 256}), "longer than 255"),
    (_body({"wide": list(range(65))}), "more than 64 items"),
    (_body({f"k{i}": ["y" * 250] * 10 for i in range(10)}), "more than 16384"),
    (_body({"x" * 256: 1}), "must be 1 to 255 printable"),
    (_body("not an object"), ""),
    (_body({"note": "x\ud800"}), ""),  # a lone surrogate: no column could store it
]


@pytest.mark.parametrize("body,message", REFUSED)
async def test_internal_or_unbounded_fields_are_refused(
    api: Api, body: dict[str, Any], message: str
) -> None:
    w = await who(api)
    # Sent as JSON with \u escapes, as any client may (httpx would refuse the surrogate).
    headers = {**w.h("2.79"), "Content-Type": "application/json"}
    r = await api.client.post(f"{V21}/servers", headers=headers, content=json.dumps(body))
    assert message in fault(r, 400)
    assert await _servers(api) == 0


async def test_legacy_hints_key_is_held_to_the_same_schema(api: Api) -> None:
    w = await who(api)
    body = server_body("x", networks="none")
    body["OS-SCH-HNT:scheduler_hints"] = {"_canopy": {"user_data": "x"}}
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=body)
    assert "reserved" in fault(r, 400)
    assert await _servers(api) == 0


async def test_known_and_unknown_hints_within_bounds_are_kept_as_sent(api: Api) -> None:
    w = await who(api)
    hints = {
        "different_host": ["8a0b8a8e-2f1e-4f5e-9a77-1d2f0c3b4a5d"],
        "same_host": "8a0b8a8e-2f1e-4f5e-9a77-1d2f0c3b4a5d",
        "query": '[">=", "$free_ram_mb", 1024]',
        "build_near_host_ip": "10.0.0.1",
        "cidr": "/24",
        "target_cell": "cell1",
        "different_cell": ["cell2"],
        "my_filter": {"rack": ["r1", "r2"], "weight": 1.5},
    }
    r = await api.client.post(f"{V21}/servers", headers=w.h("2.79"), json=_body(hints))
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    async with api.plane.db.read() as s:
        server = await s.get(Server, sid)
        assert server is not None
    assert server.hints == hints


async def test_attributes_live_in_their_own_columns(api: Api) -> None:
    """Description, tags and user data are validated fields with their own storage; the
    hints keep only hints."""
    w = await who(api)
    data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    sid = await create(
        api,
        w,
        "web",
        description="front",
        tags=["b", "a"],
        user_data=data,
        config_drive=True,
    )
    async with api.plane.db.read() as s:
        server = await s.get(Server, sid)
        assert server is not None
        tags = list(
            (await s.execute(select(ServerTag.tag).where(ServerTag.server_id == sid))).scalars()
        )
        stored = await s.get(ServerUserData, sid)
    assert server.hints == {}
    assert (server.description, server.config_drive, server.locked) == ("front", True, False)
    assert sorted(tags) == ["a", "b"]
    assert stored is not None and stored.data == data


async def test_a_list_never_loads_user_data(api: Api) -> None:
    """An admin's detail list shows `OS-EXT-SRV-ATTR:user_data` as null without reading
    it; showing the one server reads it."""
    w = await who(api)
    admin = await who(api, role="admin", project="admin")
    data = base64.b64encode(b"x" * 4000).decode()
    sid = await create(api, w, "big", user_data=data)
    with statements(api.plane.db) as seen:
        r = await api.client.get(f"{V21}/servers/detail?all_tenants=1", headers=admin.h("2.79"))
    assert r.status_code == 200, r.text
    [listed] = r.json()["servers"]
    assert listed["OS-EXT-SRV-ATTR:user_data"] is None
    assert not any("server_user_data" in sql for sql in seen)
    with statements(api.plane.db) as seen:
        shown = await show(api, admin, sid)
    assert shown["OS-EXT-SRV-ATTR:user_data"] == data
    assert any("server_user_data" in sql for sql in seen)
    assert "OS-EXT-SRV-ATTR:user_data" not in await show(api, w, sid)  # members never


async def test_tag_filters_are_plain_sql_on_the_tags_table(api: Api) -> None:
    w = await who(api)
    await create(api, w, "t", tags=["red"])
    with statements(api.plane.db) as seen:
        r = await api.client.get(f"{V21}/servers?tags=red&not-tags-any=blue", headers=w.h("2.79"))
    assert [s["name"] for s in r.json()["servers"]] == ["t"]
    [listing] = [sql for sql in seen if "FROM servers" in sql and "server_tags" in sql]
    assert "json" not in listing.lower()
