"""A servers/detail page written from its plain rows (api/compute/page_json.py) is byte for
byte what the full path gives (`views_of_plain`, `server_detail`, one `orjson.dumps`), for
every status, microversion and caller, and the common rows do take the writer's way."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from starlette.requests import Request

from canopy.api.compute import page_json
from canopy.api.compute.microversion import MAX_VERSION, APIVersion
from canopy.api.compute.page_json import DetailWriter
from canopy.api.compute.server_view import ServerView, views_of_plain
from canopy.api.compute.views import ViewContext, server_detail
from canopy.config import load_settings
from canopy.domain.context import RequestContext
from canopy.domain.states import ServerStatus
from canopy.store.models import Cloud, Flavor

VERSIONS = [APIVersion(2, n) for n in range(1, MAX_VERSION[1] + 1)]
FIELDS = ServerView._fields
T0 = "2026-11-30 00:53:39.771942"


def _request(host: bytes = b"canopy.test:8774") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": "/compute/v2.1/servers/detail",
            "query_string": b"limit=100",
            "headers": [(b"host", host)],
            "server": ("canopy.test", 8774),
        }
    )


def _context(version: APIVersion, *, admin: bool, host: bytes = b"canopy.test:8774") -> ViewContext:
    ctx = RequestContext(
        project_id="p1",
        user_id="u1",
        roles=frozenset({"admin"} if admin else {"member"}),
        is_admin_project=admin,
    )
    vc = ViewContext(_request(host), load_settings(None, env={}, overrides={}), version, ctx)
    # What view_context reads for a page: tags, flavors, clouds, create requests.
    vc.tags = {"s-tags": ["a", 'q"uote', "é"], "s-plain": []}
    vc.flavors = {
        "1": Flavor(
            id="1", name="m1.tiny", vcpus=1, ram_mb=512, disk_gb=1, ephemeral_gb=0, swap_mb=0,
            extra_specs={"hw:cpu_policy": "dedicated"},
        ),
    }  # fmt: skip
    vc.clouds = {
        "up": Cloud(name="up", enabled=True, healthy=True),
        "down": Cloud(name="down", enabled=False, healthy=True),
        "sick": Cloud(name="sick", enabled=True, healthy=False),
    }
    vc.requests = {"s-plain": "req-abc"}
    return vc


def _row(**kw: Any) -> tuple[Any, ...]:
    """A row as SQLite's driver returns it (times and JSON as text, booleans as 0/1)."""
    base: dict[str, Any] = {
        "id": "s-plain", "name": "web-1", "status": "ACTIVE", "deleted": 0,
        "project_id": "p1", "user_id": "u1", "metadata_": "{}", "cloud": "up",
        "image_id": "cirros", "boot_from_volume": 0, "flavor_id": "1", "created_at": T0,
        "updated_at": T0, "addresses": '{"private": [{"addr": "10.0.0.5", "version": 4}]}',
        "requested_zone": None, "config_drive": 0, "key_name": None, "launched_at": T0,
        "terminated_at": None, "task_state": None, "observed_state": "running",
        "fault_code": None, "fault_message": None, "fault_at": None, "remote_id": "r-1",
        "launch_index": 0, "locked": 0, "description": None, "locked_reason": None,
        "group_id": None, "attempt_log": None,
    }  # fmt: skip
    base.update(kw)
    return tuple(base[name] for name in FIELDS)


# Rows the writer writes itself: every status, with and without addresses, metadata,
# tags, a lock, a description, a key, a zone, a task, a volume boot.
COMMON = [
    *(
        _row(id=f"s-{status.value.lower()}", status=status.value, observed_state=observed)
        for status, observed in itertools.product(ServerStatus, ("running", "stopped", None))
    ),
    _row(deleted=1, terminated_at=T0),  # shown DELETED
    _row(id="s-tags", metadata_='{"k": "v", "é": "x\\"y"}', locked=1, locked_reason="why",
         description="d é", key_name="key", task_state="rebooting", config_drive=1),
    _row(addresses=None), _row(addresses="{}"),
    _row(status="BUILD", cloud=None, requested_zone="zone-a", addresses=None),
    _row(status="BUILD", task_state="spawning"),  # building: no addresses shown
    _row(addresses='{"a": [{"addr": "fd00::1", "version": 6}], "b": [{"addr": "10.0.0.9"}]}'),
    _row(addresses='{"private": [{"addr": "10.0.0.5", "version": 4}, {"addr": "fd00::5"}]}'),
    _row(addresses='{"net": [], "x": "not a list", "y": [{"addr": ""}]}'),
    _row(boot_from_volume=1), _row(image_id=None), _row(image_id="other", flavor_id="gone"),
    _row(cloud="down"), _row(cloud="sick"), _row(cloud="nowhere"), _row(cloud=None),
    _row(name="сервер ✓ 雲"), _row(launched_at=None), _row(remote_id=None, launch_index=3),
    _row(status="ACTIVE", fault_code=None, fault_message=None, fault_at=T0),
]  # fmt: skip

# Rows the writer leaves to the full path (a fault), or that it writes another way or
# leaves to the full path: text that needs escaping, times and JSON not in their usual
# shape, values of types a row does not usually hold.
UNUSUAL = [
    _row(status="ERROR", fault_code=500, fault_message="boom", fault_at=T0),
    _row(deleted=1, fault_message="gone wrong", attempt_log='[{"cloud": "up", "error": "x"}]'),
    _row(name='quote " and \\ backslash'), _row(name="tab\there"), _row(name="nbsp\u00a0x"),
    _row(key_name="k\nn"), _row(task_state='"'), _row(requested_zone="z\\", cloud=None),
    _row(created_at="2026-11-30T00:53:39+00:00"), _row(updated_at="0999-01-02 03:04:05.000006"),
    _row(launched_at="2026-11-30 00:53:39"), _row(terminated_at="2026-11-30 00:53:39"),
    _row(addresses='{"private": [{"addr": "10.0.0.5", "version": true}]}'),
    _row(addresses='{"private": [{"addr": "10.0.0.5", "version": 99999999999999999}]}'),
    _row(addresses='{"private": [{"addr": "10.0.0.5", "version": "4"}]}'),
    _row(addresses='{"private": ["10.0.0.7"]}'), _row(addresses="[]"),
    _row(addresses='{"private": [{"addr": 7, "version": 4}]}'),
    _row(addresses='{"p\\"x": [{"addr": "10.0.0.5", "version": 4}]}'),
    _row(metadata_='{"n": NaN}'), _row(metadata_="null"), _row(metadata_='{"a": {"b": [1]}}'),
    _row(launch_index=None), _row(locked=None), _row(description="tab\t", locked_reason="\\"),
    _row(remote_id='r"1'),
]  # fmt: skip


def _full(vc: ViewContext, rows: list[tuple[Any, ...]], links: list[Any]) -> bytes:
    doc: dict[str, Any] = {
        "servers": [server_detail(vc, v) for v in views_of_plain(rows, detail=True)]
    }
    if links:
        doc["servers_links"] = links
    return orjson.dumps(doc)


@pytest.mark.parametrize("admin", [False, True])
def test_the_writer_writes_what_the_full_path_gives(admin: bool) -> None:
    rows = COMMON + UNUSUAL
    links = [{"rel": "next", "href": "http://canopy.test:8774/compute/v2.1/servers/detail?x"}]
    for version in VERSIONS:
        vc = _context(version, admin=admin)
        assert DetailWriter(vc).page(rows, links) == _full(vc, rows, links), version
        assert DetailWriter(vc).page(rows[:3], []) == _full(vc, rows[:3], []), version
        assert DetailWriter(vc).page([], []) == b'{"servers":[]}'


@pytest.mark.parametrize("admin", [False, True])
def test_common_rows_take_the_writers_way(admin: bool) -> None:
    for version in (APIVersion(2, 1), APIVersion(2, 26), APIVersion(*MAX_VERSION)):
        writer = DetailWriter(_context(version, admin=admin))
        for row in COMMON:
            assert writer.entry(row) is not None, row
        for row in UNUSUAL[:2]:  # a fault is the full path's
            assert writer.entry(row) is None, row


def test_links_escape_an_odd_host() -> None:
    vc = _context(APIVersion(2, 1), admin=False, host=b'odd"host\\:1')
    assert DetailWriter(vc).page(COMMON[:2], []) == _full(vc, COMMON[:2], [])


def test_a_failing_row_fails_as_the_full_path_does() -> None:
    """A row the full path cannot render (a time that is no time) is no page either way."""
    vc = _context(APIVersion(2, 1), admin=False)
    for row in (_row(created_at="not a time at all"), _row(metadata_='["not", "a", "map"]')):
        with pytest.raises(ValueError):
            _full(vc, [row], [])
        with pytest.raises(ValueError):
            DetailWriter(vc).page([row], [])


def test_plain_text_is_what_orjson_writes_as_it_is() -> None:
    """`_plain` says a string needs no escaping only where orjson writes it unchanged, for
    every code point."""
    for code in range(0x110000):
        ch = chr(code)
        if page_json._plain(ch):
            assert orjson.dumps(ch) == f'"{ch}"'.encode(), hex(code)
