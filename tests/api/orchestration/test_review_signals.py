"""Review: a signal body that is not declared JSON skipped the edge's Unicode checks, and a
signal whose text no database can store wedged its stack for good.

The route now checks a signal's text whatever its Content-Type (400 in Heat's fault body);
the engine, for a row written before that check or by another path, replaces what cannot
be stored, so the signal is handled and the stack's update or delete completes."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Api
from tests.orchestration.helpers import events, send_signal, settle, signals, stack

from .test_signals import TEMPLATE, _stack, path_of
from .test_stacks import assert_heat_fault

BAD_REASONS = ["\ud800", "a\x00b", "\udfff\ud800"]


async def _post(api: Api, name: str, body: bytes, ctype: str) -> tuple[str, httpx.Response]:
    sid, outs = await _stack(api, name, TEMPLATE)
    endpoint = path_of(outs["endpoint"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://canopy.test"
    ) as anonymous:
        headers = {"X-Auth-Token": outs["token"], "Content-Type": ctype}
        r = await anonymous.post(endpoint, content=body, headers=headers)
    return sid, r


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "SUCCESS", "reason": "\\ud800"}',
        b'{"status": "SUCCESS", "reason": "a\\u0000b"}',
        b'{"status": "SUCCESS", "data": {"\\udc00": 1}}',
        b'{"status": "SUCCESS", "reason": "\xff"}',
    ],
)
async def test_unstorable_text_in_a_signal_of_any_content_type_is_400(
    api: Api, ctype: str, body: bytes
) -> None:
    sid, r = await _post(api, "bad", body, ctype)
    assert r.status_code == 400, (r.status_code, r.text)
    assert_heat_fault(r, 400)
    assert await signals(api.plane, sid) == []


async def test_a_paired_surrogate_escape_in_a_text_plain_signal_is_accepted(api: Api) -> None:
    body = b'{"status": "SUCCESS", "reason": "\\ud83d\\ude00"}'
    sid, r = await _post(api, "emoji", body, "text/plain")
    assert r.status_code == 200, r.text
    await api.plane.worker.orchestration.run_once()
    (sig,) = await signals(api.plane, sid)
    assert sig.handled_at is not None
    assert "\U0001f600" in sig.outcome


@pytest.mark.parametrize("reason", BAD_REASONS)
async def test_the_engine_handles_a_stored_unstorable_signal(api: Api, reason: str) -> None:
    sid, _ = await _stack(api, "eng", TEMPLATE)
    await send_signal(api.plane, sid, "handle", {"status": "SUCCESS", "reason": reason})
    await send_signal(api.plane, sid, "handle", {"status": "SUCCESS", "reason": "next"})
    for _ in range(3):
        await api.plane.worker.orchestration.run_once()
    sigs = await signals(api.plane, sid)
    assert [x.handled_at is not None for x in sigs] == [True, True]
    assert "\ufffd" in sigs[0].outcome and "next" in sigs[1].outcome
    reasons = [e.status_reason for e in await events(api.plane, sid) if e.action == "SIGNAL"]
    assert any("\ufffd" in x for x in reasons), reasons


@pytest.mark.parametrize("reason", ["fine", *BAD_REASONS])
async def test_a_stored_bad_signal_does_not_wedge_a_stack_delete(api: Api, reason: str) -> None:
    sid, _ = await _stack(api, "del", TEMPLATE)
    await send_signal(api.plane, sid, "handle", {"status": "SUCCESS", "reason": reason})
    pid = api.admin.project_id
    r = await api.client.delete(f"/orchestration/v1/{pid}/stacks/del/{sid}")
    assert r.status_code == 204, r.text
    st = await settle(api.plane, sid, steps=200)
    assert (st.action, st.status) == ("DELETE", "COMPLETE"), st.status_reason


@pytest.mark.parametrize("reason", ["fine", *BAD_REASONS])
async def test_a_stored_bad_signal_does_not_wedge_a_stack_update(api: Api, reason: str) -> None:
    sid, _ = await _stack(api, "upd", TEMPLATE)
    await send_signal(api.plane, sid, "handle", {"status": "SUCCESS", "reason": reason})
    pid = api.admin.project_id
    r = await api.client.patch(f"/orchestration/v1/{pid}/stacks/upd/{sid}", json={"parameters": {}})
    assert r.status_code == 202, r.text
    await settle(api.plane, sid, steps=200)
    st = await stack(api.plane, sid)
    assert (st.action, st.status) == ("UPDATE", "COMPLETE"), st.status_reason
    assert all(x.handled_at is not None for x in await signals(api.plane, sid))
