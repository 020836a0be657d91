"""OS::Heat::WaitCondition and its handle: success after `count` signals, a repeated id
counted once, FAILURE with its reason, the timeout, and the wc_notify pattern."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from canopy.store.models import ServerUserData
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, resources, send_signal, server, settle, stack

NOTIFY = '#!/bin/sh\nwc_notify --data-binary \'{"status": "SUCCESS"}\'\n'


def waiting(count: int = 2, timeout: int = 600) -> dict[str, Any]:
    return hot(
        {
            "handle": {"type": "OS::Heat::WaitConditionHandle"},
            "vm": server(
                user_data={
                    "str_replace": {
                        "template": NOTIFY,
                        "params": {"wc_notify": {"get_attr": ["handle", "curl_cli"]}},
                    }
                }
            ),
            "wait": {
                "type": "OS::Heat::WaitCondition",
                "depends_on": "vm",
                "properties": {
                    "handle": {"get_resource": "handle"},
                    "count": count,
                    "timeout": timeout,
                },
            },
            "after": {
                "type": "OS::Heat::Value",
                "properties": {"value": {"get_attr": ["wait", "data"]}},
            },
        }
    )


async def started(p: Plane, sid: str, name: str = "wait") -> None:
    """Step until the wait condition `name` is waiting."""

    async def there() -> bool:
        rows = await resources(p, sid)
        return name in rows and rows[name].status == "IN_PROGRESS"

    await p.run_until(there)


async def test_count_signals_complete_it_and_a_repeated_id_counts_once(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "waits", waiting(count=2))
        await started(p, sid)
        # The server was given the handle's curl command in its user_data (wc_notify).
        rows = await resources(p, sid)
        curl = rows["handle"].attributes["curl_cli"]
        assert curl.startswith("curl -i -X POST -H 'X-Auth-Token: ")
        assert curl.endswith(
            "-H 'Content-Type: application/json' -H 'Accept: application/json' "
            + rows["handle"].attributes["endpoint"]
        )
        async with p.db.read() as s:
            ud = await s.get(ServerUserData, rows["vm"].server_id)
            assert ud is not None
            assert curl in base64.b64decode(ud.data).decode()
        # Only the digest of the token is kept.
        token = rows["handle"].attributes["token"]
        assert token not in json.dumps(rows["handle"].data)

        await send_signal(p, sid, "handle", {"status": "SUCCESS", "id": "a", "data": "one"})
        await send_signal(p, sid, "handle", {"status": "SUCCESS", "id": "a", "data": "again"})
        for _ in range(5):
            await p.step()
        assert (await stack(p, sid)).status == "IN_PROGRESS"  # one id so far
        await send_signal(p, sid, "handle", {"id": "b", "data": "two"})  # SUCCESS by default
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        rows = await resources(p, sid)
        assert json.loads(rows["wait"].attributes["data"]) == {"a": "again", "b": "two"}
        assert json.loads(rows["after"].attributes["value"]) == {"a": "again", "b": "two"}
    finally:
        await p.close()


async def test_a_failure_signal_fails_the_stack_with_its_reason(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "fails", waiting(count=1))
        await started(p, sid)
        await send_signal(p, sid, "handle", {"status": "FAILURE", "reason": "disk full"})
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "resources.wait: WaitConditionFailure: disk full" in done.status_reason
        assert "after" not in await resources(p, sid)
    finally:
        await p.close()


async def test_no_signal_times_it_out(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "silent", waiting(count=1, timeout=30))
        await started(p, sid)
        rows = await resources(p, sid)
        assert rows["wait"].wait_until is not None  # the engine comes back at the deadline
        p.clock.advance(31)
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "WaitConditionTimeout: 0 of 1 received" in done.status_reason
    finally:
        await p.close()


async def test_a_signal_before_the_wait_starts_is_kept(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "early", waiting(count=1))

        async def handle_ready() -> bool:
            rows = await resources(p, sid)
            return "handle" in rows and rows["handle"].status == "COMPLETE"

        await p.run_until(handle_ready)
        assert "wait" not in await resources(p, sid)  # the server is still booting
        await send_signal(p, sid, "handle", {"status": "SUCCESS"})
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
    finally:
        await p.close()
