"""Nova's server metadata API: what `openstack server set/unset --property` and
`server show` send, Nova's rules and faults, and nothing changed on a refusal."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import update

from canopy.bootstrap import ensure_project
from canopy.store.models import Server
from tests.api.compute.helpers import V21, Who, create, fault, show, until_status, who
from tests.api.conftest import Api


async def _active(api: Api, w: Who, **kw: object) -> str:
    sid = await create(api, w, "vm", **kw)
    await until_status(api, w, sid, "ACTIVE")
    return sid


def _url(sid: str, key: str | None = None) -> str:
    return f"{V21}/servers/{sid}/metadata" + (f"/{key}" if key is not None else "")


async def _meta(api: Api, w: Who, sid: str) -> dict[str, str]:
    r = await api.client.get(_url(sid), headers=w.h())
    assert r.status_code == 200, r.text
    found: dict[str, str] = r.json()["metadata"]
    return found


async def test_set_merges_replace_replaces_and_show_shows(api: Api) -> None:
    w = await who(api)
    sid = await _active(api, w, metadata={"made": "at create"})
    assert await _meta(api, w, sid) == {"made": "at create"}
    # `server set --property k=v`: POST, a merge; the answer is the whole metadata.
    r = await api.client.post(_url(sid), headers=w.h(), json={"metadata": {"k": "v"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"metadata": {"made": "at create", "k": "v"}}
    assert (await show(api, w, sid))["metadata"] == {"made": "at create", "k": "v"}
    # PUT on the collection replaces all of it.
    r = await api.client.put(_url(sid), headers=w.h(), json={"metadata": {"only": "this"}})
    assert r.status_code == 200 and r.json() == {"metadata": {"only": "this"}}
    assert await _meta(api, w, sid) == {"only": "this"}
    # PUT on one key, GET it, DELETE it (`server unset --property k`).
    r = await api.client.put(_url(sid, "k2"), headers=w.h(), json={"meta": {"k2": ""}})
    assert r.status_code == 200 and r.json() == {"meta": {"k2": ""}}
    r = await api.client.get(_url(sid, "k2"), headers=w.h())
    assert r.status_code == 200 and r.json() == {"meta": {"k2": ""}}
    r = await api.client.delete(_url(sid, "k2"), headers=w.h())
    assert r.status_code == 204 and r.content == b""
    assert await _meta(api, w, sid) == {"only": "this"}
    # The list's detail view reads the same record.
    r = await api.client.get(f"{V21}/servers/detail", headers=w.h())
    [listed] = [s for s in r.json()["servers"] if s["id"] == sid]
    assert listed["metadata"] == {"only": "this"}


async def test_a_missing_key_or_server_is_item_not_found(api: Api) -> None:
    w = await who(api)
    sid = await _active(api, w)
    assert fault(await api.client.get(_url(sid, "nope"), headers=w.h()), 404) == (
        "Metadata item was not found"
    )
    assert fault(await api.client.delete(_url(sid, "nope"), headers=w.h()), 404) == (
        "Metadata item was not found"
    )
    gone = "00000000-0000-0000-0000-000000000000"
    for method, url, body in (
        ("GET", _url(gone), None),
        ("POST", _url(gone), {"metadata": {"k": "v"}}),
        ("PUT", _url(gone), {"metadata": {"k": "v"}}),
        ("GET", _url(gone, "k"), None),
        ("PUT", _url(gone, "k"), {"meta": {"k": "v"}}),
        ("DELETE", _url(gone, "k"), None),
    ):
        r = await api.client.request(method, url, headers=w.h(), json=body)
        assert "could not be found" in fault(r, 404), (method, url)


async def test_another_project_s_server_is_not_found_and_not_changed(api: Api) -> None:
    mine = await who(api)
    other = await who(api, project="elsewhere", user="eve")
    sid = await _active(api, mine, metadata={"k": "v"})
    for method, url, body in (
        ("GET", _url(sid), None),
        ("POST", _url(sid), {"metadata": {"k": "x"}}),
        ("PUT", _url(sid), {"metadata": {}}),
        ("GET", _url(sid, "k"), None),
        ("PUT", _url(sid, "k"), {"meta": {"k": "x"}}),
        ("DELETE", _url(sid, "k"), None),
    ):
        r = await api.client.request(method, url, headers=other.h(), json=body)
        assert fault(r, 404) == f"Instance {sid} could not be found.", (method, url)
    assert await _meta(api, mine, sid) == {"k": "v"}


async def test_put_on_a_key_needs_exactly_that_key(api: Api) -> None:
    w = await who(api)
    sid = await _active(api, w, metadata={"k": "v"})
    r = await api.client.put(_url(sid, "k"), headers=w.h(), json={"meta": {"other": "x"}})
    assert fault(r, 400) == "Request body and URI mismatch"
    for body in (
        {"meta": {"k": "x", "j": "y"}},
        {"meta": {}},
        {"metadata": {"k": "x"}},
        {"meta": {"k": 1}},
        {"meta": "k"},
    ):
        r = await api.client.put(_url(sid, "k"), headers=w.h(), json=body)
        fault(r, 400)
    assert await _meta(api, w, sid) == {"k": "v"}


async def test_bad_input_is_400_and_changes_nothing(api: Api) -> None:
    w = await who(api)
    sid = await _active(api, w, metadata={"k": "v"})
    bad: list[object] = [
        {"metadata": {"n": 1}},
        {"metadata": {"n": None}},
        {"metadata": {"n": ["a"]}},
        {"metadata": {"n": {"a": "b"}}},
        {"metadata": {"": "empty key"}},
        {"metadata": {"k" * 256: "v"}},
        {"metadata": {"k": "v" * 256}},
        {"metadata": {"nul": "a\x00b"}},
        {"metadata": {"canopy:x": "reserved"}},
        {"metadata": ["k", "v"]},
        {"metadata": {"k": "v"}, "extra": 1},
        {},
    ]
    for body in bad:
        for method in ("POST", "PUT"):
            r = await api.client.request(method, _url(sid), headers=w.h(), json=body)
            fault(r, 400)
    # A lone surrogate, as a client's JSON escape.
    raw = json.dumps({"metadata": {"k": "x\ud800"}}).encode("ascii")
    r = await api.client.post(
        _url(sid), headers={**w.h(), "Content-Type": "application/json"}, content=raw
    )
    fault(r, 400)
    r = await api.client.post(
        _url(sid), headers={**w.h(), "Content-Type": "application/json"}, content=b"{not json"
    )
    fault(r, 400)
    assert await _meta(api, w, sid) == {"k": "v"}


async def test_a_huge_body_is_refused(api: Api) -> None:
    w = await who(api)
    sid = await _active(api, w, metadata={"k": "v"})
    limit = api.plane.settings.api.max_body_bytes
    many = {f"k{i}": "v" * 255 for i in range(limit // 255 + 1)}  # over [api] max_body_bytes
    r = await api.client.post(_url(sid), headers=w.h(), json={"metadata": many})
    assert r.status_code == 413 and list(r.json()) == ["overLimit"], r.text[:200]
    # Under the body limit, more items than the quota (128 by default) is Nova's 403.
    r = await api.client.put(
        _url(sid), headers=w.h(), json={"metadata": {f"k{i}": "v" for i in range(129)}}
    )
    assert fault(r, 403) == "Maximum number of metadata items exceeds 128"
    assert await _meta(api, w, sid) == {"k": "v"}


async def test_the_metadata_items_quota_is_403_counting_the_result(api: Api) -> None:
    await ensure_project(api.plane.db, api.plane.clock, "tiny", quotas={"metadata_items": 2})
    w = await who(api, project="tiny", user="tina")
    sid = await _active(api, w, metadata={"a": "1"})
    r = await api.client.post(_url(sid), headers=w.h(), json={"metadata": {"b": "2", "c": "3"}})
    assert fault(r, 403) == "Maximum number of metadata items exceeds 2"
    # A merge that only overwrites is within it; a replace counts only what it keeps.
    r = await api.client.post(_url(sid), headers=w.h(), json={"metadata": {"a": "x", "b": "2"}})
    assert r.status_code == 200, r.text
    r = await api.client.put(_url(sid, "c"), headers=w.h(), json={"meta": {"c": "3"}})
    assert fault(r, 403) == "Maximum number of metadata items exceeds 2"
    r = await api.client.put(_url(sid), headers=w.h(), json={"metadata": {"c": "3", "d": "4"}})
    assert r.status_code == 200 and r.json() == {"metadata": {"c": "3", "d": "4"}}


async def test_building_locked_or_deleting_servers_are_409(api: Api) -> None:
    w = await who(api)
    building = await create(api, w, "b", metadata={"k": "v"})
    r = await api.client.post(_url(building), headers=w.h(), json={"metadata": {"x": "y"}})
    assert fault(r, 409) == (
        f"Cannot 'update metadata' instance {building} while it is in vm_state building"
    )  # Nova looks at the vm_state before the task_state
    # A missing key is a 404 before the state is looked at (Nova's order).
    fault(await api.client.delete(_url(building, "nope"), headers=w.h()), 404)
    fault(await api.client.delete(_url(building, "k"), headers=w.h()), 409)
    # Reading is allowed in any state.
    assert await _meta(api, w, building) == {"k": "v"}

    sid = await _active(api, w, metadata={"k": "v"})
    async with api.plane.db.session() as s:
        await s.execute(update(Server).where(Server.id == sid).values(locked=True))
    r = await api.client.put(_url(sid, "k"), headers=w.h(), json={"meta": {"k": "x"}})
    assert fault(r, 409) == f"Instance {sid} is locked"
    # A cloud admin may change a locked server's metadata (Nova's lock rule).
    r = await api.client.put(_url(sid, "k"), json={"meta": {"k": "by admin"}})
    assert r.status_code == 200, r.text
    async with api.plane.db.session() as s:
        await s.execute(update(Server).where(Server.id == sid).values(locked=False))

    assert (await api.client.delete(f"{V21}/servers/{sid}", headers=w.h())).status_code == 204
    r = await api.client.post(_url(sid), headers=w.h(), json={"metadata": {"x": "y"}})
    assert "while it is in task_state deleting" in fault(r, 409)
    assert await _meta(api, w, sid) == {"k": "by admin"}


async def test_a_reader_may_read_but_not_change(api: Api) -> None:
    w = await who(api)
    reader = await who(api, role="reader")
    sid = await _active(api, w, metadata={"k": "v"})
    assert await _meta(api, reader, sid) == {"k": "v"}
    r = await api.client.post(_url(sid), headers=reader.h(), json={"metadata": {"x": "y"}})
    fault(r, 403)
    assert await _meta(api, w, sid) == {"k": "v"}


async def test_odd_keys_in_the_path_are_4xx_and_change_nothing(api: Api) -> None:
    w = await who(api)
    sid = await _active(api, w, metadata={"k": "v"})
    for key in ("%00", "k" * 300):
        assert fault(await api.client.get(_url(sid, key), headers=w.h()), 404) == (
            "Metadata item was not found"
        )
        fault(await api.client.delete(_url(sid, key), headers=w.h()), 404)
    # Not UTF-8 (a lone surrogate's bytes, a stray byte): the path itself is refused.
    for key in ("%ED%A0%80", "%FF"):
        fault(await api.client.get(_url(sid, key), headers=w.h()), 400)
        r = await api.client.put(_url(sid, key), headers=w.h(), json={"meta": {"x": "y"}})
        fault(r, 400)
    # A NUL key named in both the path and the body is the body's 400, not a 500.
    r = await api.client.put(_url(sid, "%00"), headers=w.h(), json={"meta": {"\x00": "x"}})
    fault(r, 400)
    # A key of 256 characters in both places is over Nova's 255.
    long = "k" * 256
    fault(await api.client.put(_url(sid, long), headers=w.h(), json={"meta": {long: "x"}}), 400)
    # A percent-encoded key is the decoded key.
    r = await api.client.put(_url(sid, "a%3Fb"), headers=w.h(), json={"meta": {"a?b": "1"}})
    assert r.status_code == 200, r.text
    assert await _meta(api, w, sid) == {"k": "v", "a?b": "1"}


async def test_concurrent_merges_lose_no_item(api: Api) -> None:
    w = await who(api)
    sid = await _active(api, w, metadata={"k": "v"})
    answers = await asyncio.gather(
        *(
            api.client.post(_url(sid), headers=w.h(), json={"metadata": {f"c{i}": str(i)}})
            for i in range(8)
        )
    )
    assert [r.status_code for r in answers] == [200] * 8
    assert await _meta(api, w, sid) == {"k": "v", **{f"c{i}": str(i) for i in range(8)}}
