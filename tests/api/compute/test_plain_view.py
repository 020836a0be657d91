"""A member's servers/detail page at 2.26+ reads its tags and flavors on SQLite's plain
reads (api/compute/plain_view.py), and the page is byte for byte what `view_context`'s
session path gives; an admin's page, and PostgreSQL's, take the session path."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from canopy.api.compute import plain_view, servers
from canopy.api.compute.views import ViewContext
from tests.api.compute.helpers import V21, create, who
from tests.api.conftest import Api

PAGE = f"{V21}/servers/detail?limit=100"
VERSIONS = ["2.1", "2.25", "2.26", "2.46", "2.47", "2.79"]


async def _seed(api: Api) -> None:
    w = await who(api)
    ids = [await create(api, w, f"vm-{i}") for i in range(4)]
    tags = [["zeta", "alpha", "é-accent", 'q"uote'], ["b"], [], ["a", "c"]]
    for sid, these in zip(ids, tags, strict=True):
        r = await api.client.put(
            f"{V21}/servers/{sid}/tags", headers=w.h("2.26"), json={"tags": these}
        )
        assert r.status_code == 200, r.text
    r = await api.client.post(
        f"{V21}/flavors/1/os-extra_specs",
        json={"extra_specs": {"hw:cpu_policy": "dedicated", "quota:cpu_shares": "1024"}},
    )
    assert r.status_code == 200, r.text
    # A server of another flavor (no extra specs), so the page embeds two.
    await create(api, w, "vm-small", flavorRef="2")
    # And one whose flavor (every embedded field its own value) was deleted after it
    # booted: still embedded, as Nova's servers keep the flavor they were booted with.
    made = {"name": "c1.odd", "id": "c1-odd", "ram": 1536, "vcpus": 3, "disk": 7, "swap": 256}
    made["OS-FLV-EXT-DATA:ephemeral"] = 2
    r = await api.client.post(f"{V21}/flavors", json={"flavor": made})
    assert r.status_code == 200, r.text
    await create(api, w, "vm-odd", flavorRef="c1-odd")
    r = await api.client.delete(f"{V21}/flavors/c1-odd")
    assert r.status_code == 202, r.text


async def _page(api: Api, headers: dict[str, str], path: str = PAGE) -> bytes:
    r = await api.client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("role", ["member", "admin"])
async def test_the_plain_view_reads_give_the_session_paths_page(
    api: Api, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(api)
    member = await who(api)

    def headers(version: str) -> dict[str, str]:
        if role == "member":
            return member.h(version)
        return {**api.admin.headers, "OpenStack-API-Version": f"compute {version}"}

    path = PAGE if role == "member" else f"{PAGE}&all_tenants=1"
    answers: list[ViewContext | None] = []
    real = servers.plain_view_context

    def spied(*args: Any) -> ViewContext | None:
        vc = real(*args)
        answers.append(vc)
        return vc

    def refused(*args: Any) -> None:
        return None

    plain_file = api.plane.db.plain_reads is not None
    for version in VERSIONS:
        answers.clear()
        monkeypatch.setattr(servers, "plain_view_context", spied)
        mine = await _page(api, headers(version), path)
        monkeypatch.setattr(servers, "plain_view_context", refused)
        theirs = await _page(api, headers(version), path)
        assert mine == theirs, version
        minor = int(version.split(".")[1])
        reads = minor >= 26 or (role == "admin" and minor >= 3)
        if not (plain_file and reads):
            assert answers == [], version  # the page had no view reads, or no plain reads
        elif role == "admin":
            assert answers == [None], version  # a cloud admin's: the session path
        else:
            [vc] = answers
            assert vc is not None, version  # a member's: read on the plain reads
    body = orjson.loads(mine)["servers"]
    assert len(body) == 6
    shown = {s["name"]: s for s in body}
    assert shown["vm-0"]["tags"] == sorted(["zeta", "alpha", "é-accent", 'q"uote'])
    assert shown["vm-2"]["tags"] == []
    assert shown["vm-0"]["flavor"]["extra_specs"] == {
        "hw:cpu_policy": "dedicated",
        "quota:cpu_shares": "1024",
    }
    assert shown["vm-small"]["flavor"]["extra_specs"] == {}
    assert shown["vm-small"]["flavor"]["original_name"] == "m1.small"
    assert shown["vm-odd"]["flavor"] == {
        "vcpus": 3,
        "ram": 1536,
        "disk": 7,
        "ephemeral": 2,
        "swap": 256,
        "original_name": "c1.odd",
        "extra_specs": {},
    }


def test_the_tags_statement_searches_the_tag_index() -> None:
    """The page's ids bound as JSON text: SQLite searches server_tags' primary key for each,
    never scans it."""
    from sqlalchemy.dialects import sqlite

    from canopy.store.models import Base

    conn = sqlite3.connect(":memory:")
    for table in Base.metadata.sorted_tables:
        if table.name in ("servers", "server_tags"):
            conn.execute(str(_ddl(table, sqlite.dialect())))
    sql = str(plain_view.TAGS.compile(dialect=sqlite.dialect()))
    plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", ('["a", "b"]',)).fetchall()
    text = " | ".join(str(row[-1]) for row in plan)
    assert "SEARCH server_tags USING COVERING INDEX" in text and "(server_id=?)" in text, text
    assert "SCAN server_tags" not in text, text


def _ddl(table: Any, dialect: Any) -> Any:
    from sqlalchemy.schema import CreateTable

    return CreateTable(table).compile(dialect=dialect)


def test_the_plain_flavor_shows_what_an_embedded_flavor_reads(tmp_path: Path) -> None:
    """Every field `views._flavor_of` reads is one of `PlainFlavor`'s."""
    import inspect

    from canopy.api.compute import views

    source = inspect.getsource(views._flavor_of)
    read = {name for name in plain_view.PlainFlavor._fields if f"f.{name}" in source}
    assert read == set(plain_view.PlainFlavor._fields)
